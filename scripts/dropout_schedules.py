#!/usr/bin/env python3
"""The Simple MNIST convnet under constant, curriculum, early and late dropout."""

from kdrop.experiments.dropout_schedules import main

if __name__ == "__main__":
    main()
