"""The Stripe system API: client, auth, source-shaped models and stream readers.

* :mod:`.client` - :func:`~.client.stripe_client`, an :class:`interchange.http.SourceClient`
  for the Stripe REST API (or localstripe) with Stripe-style form encoding.
* :mod:`.auth` - :class:`~.auth.StripeKeyAuth`, the secret key read from Vault per request.
* :mod:`.models` - ``StripeCustomer``, ``StripeCharge``, ``StripeRefund``, ``StripeEvent``.
* :mod:`.streams` - :func:`~.streams.read_stream`, the one reader the process layer
  calls, plus :func:`~.streams.parse_record` and the drift helpers.
"""
