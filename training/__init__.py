"""Offline half of cnn-tagger: train a CNN, evaluate it, publish it into the model store."""
