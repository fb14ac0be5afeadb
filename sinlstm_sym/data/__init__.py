"""The windows a model trains and is checked on: the built-in sine windows and their bucketed iterator."""
