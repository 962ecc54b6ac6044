"""The project's local sandboxes for its sources: fakes and launchers we run ourselves.

Development and tests only. ``make up`` and the test fixtures start them as separate
processes; the layers (``interchange``, ``system_apis``, ``process_apis``,
``experience_apis``, ``flows``) never import this package and production never ships it.

* :mod:`sandboxes.localstripe_server` — localstripe, in memory only, loopback only, with a
  bulk seeding route.
* :mod:`sandboxes.stripe_seed` — a deterministic, realistically messy Stripe data set and
  the functions that load it into a sandbox (bulk route, or the official SDK).
"""
