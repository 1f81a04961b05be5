"""The report server's blueprints, one module per page family; each page has a JSON twin under
``/api/``. Views read through the backend interface only (the alerts views go through
``reports.alerts``, which owns the delivery tables)."""
