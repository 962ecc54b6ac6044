"""The HubSpot system API (CRM v3): client, auth, source-shaped models and stream readers.

* :mod:`.client` - :func:`~.client.hubspot_client`, an :class:`interchange.http.SourceClient`
  for HubSpot (or the project's HubSpot-contract sandbox) that honours HubSpot's request
  limits and turns HubSpot error bodies into :mod:`interchange.errors` types.
* :mod:`.auth` - :class:`~.auth.HubSpotOAuth` (refresh-token grant, rotated refresh tokens
  written back to Vault) and :class:`~.auth.HubSpotPrivateAppAuth` (a static bearer
  token); :func:`~.auth.hubspot_auth` picks one from the keys stored at the Vault path.
* :mod:`.models` - ``HubSpotObject``, ``HubSpotContact``, ``HubSpotCompany``.
* :mod:`.streams` - :func:`~.streams.read_stream` (full list paging and windowed
  incremental search), :func:`~.streams.batch_upsert_contacts`, and the parsing and
  drift helpers.
"""
