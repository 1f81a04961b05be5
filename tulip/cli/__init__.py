"""The ``tulip`` command line: argv in, one API call, formatted output out."""
