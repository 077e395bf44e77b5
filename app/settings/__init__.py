"""The service's settings, one module per concern; `app.config.Settings` combines them."""
