"""TensorFlow Serving's REST API (`/v1/models/{m}:predict`, `:classify`, status, metadata),
as TF Serving's own `http_rest_api_handler` and `json_tensor` speak it, so its clients work."""
