"""Each private Keras API kdrop uses, checked on the installed Keras."""

import keras

from kdrop import keras_internals


def test_direct_sublayers_lists_held_layers_not_their_children():
    attention = keras.layers.MultiHeadAttention(num_heads=1, key_dim=2, dropout=0.1)
    attention(keras.ops.ones((1, 3, 2)), keras.ops.ones((1, 3, 2)))
    sublayers = keras_internals.direct_sublayers(attention)
    assert attention._dropout_layer in sublayers
    assert all(layer is not attention for layer in sublayers)
    block = keras.Sequential([keras.layers.Dense(1)])
    holder = keras.Sequential([block])
    assert keras_internals.direct_sublayers(holder) == [block]


def test_own_seed_generators():
    dropout = keras.layers.Dropout(0.5)
    assert keras_internals.own_seed_generators(dropout) == [dropout.seed_generator]
    assert keras_internals.own_seed_generators(keras.layers.Dense(1)) == []
