"""Shopify Admin REST system API: orders, products, customers and inventory levels.

* :mod:`.client` - :func:`~system_apis.shopify.client.shopify_client` (Vault token auth,
  pinned API version, leaky-bucket pacing, retries and typed errors).
* :mod:`.models` - Shopify-shaped pydantic models.
* :mod:`.streams` - :func:`~system_apis.shopify.streams.read_stream` (Link-header paging,
  incremental by ``updated_at_min``, resumable cursors, drift fingerprints) and
  :func:`~system_apis.shopify.streams.set_inventory_levels` (idempotent write).
"""
