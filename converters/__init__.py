"""ckit's converters: every Keras/TensorFlow format to every other, through one layout."""
