#!/usr/bin/env python3
"""The Simple MNIST convnet with and without Dropout(0.5): the main job."""

from kdrop.experiments.cnn_dropout import main

if __name__ == "__main__":
    main()
