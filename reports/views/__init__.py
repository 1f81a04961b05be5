"""The report server's blueprints, one module per page family; each page has a JSON twin under
``/api/``. Views read through the backend interface only (the alerts views go through
``reports.alerts``, which owns the delivery tables). Two POSTs change state, each through its
use case: an alert's retry and the review basket (``auditor.review.apply_review``)."""
