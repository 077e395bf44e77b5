"""The online half of cnn-tagger: a FastAPI service that classifies images with dynamic batching."""
