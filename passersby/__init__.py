"""passersby: an endless generative portrait player."""
__version__ = "0.1.0"
