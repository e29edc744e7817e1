"""The experiments' models and schedules: the keras-io convnet, curriculum
dropout sized to a run."""

import keras

import kdrop

# Curriculum(0.5, gamma) with gamma = CURRICULUM_SPEED / total_steps has
# rate 0.5 * (1 - exp(-3)) = 0.475, 95 % of its final 0.5, at mid-training.
CURRICULUM_SPEED = 6.0


def curriculum_to_half(total_steps):
    """`Curriculum(0.5, gamma)` at 95 % of 0.5 after half of `total_steps`."""
    return kdrop.schedules.Curriculum(0.5, gamma=CURRICULUM_SPEED / total_steps)


def describe_schedule(schedule):
    """E.g. "Curriculum(final_rate=0.5, gamma=0.0125)"."""
    arguments = ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in schedule.get_config().items()
    )
    return f"{type(schedule).__name__}({arguments})"


def simple_mnist_convnet(dropout=None):
    """keras-io "Simple MNIST convnet", with `dropout` before the classifier.

    Conv2D(32, 3, relu) - MaxPool(2) - Conv2D(64, 3, relu) - MaxPool(2) -
    Flatten - [dropout] - Dense(10, softmax); Adam, cross-entropy.
    """
    # Fixed layer names give every run the same TensorBoard tags.
    layers = [
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(2, name="pool1"),
        keras.layers.Conv2D(64, 3, activation="relu", name="conv2"),
        keras.layers.MaxPooling2D(2, name="pool2"),
        keras.layers.Flatten(name="flatten"),
    ]
    if dropout is not None:
        layers.append(dropout)
    layers.append(keras.layers.Dense(10, activation="softmax", name="classifier"))
    model = keras.Sequential(layers, name="cnn")
    model.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model
