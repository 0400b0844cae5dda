"""How trials run: the two engines and what they share.

``worker`` (TensorFlow set-up, the one epoch callback that scores every epoch, failure marking),
``cluster`` (an embedded Ray or a cluster joined by address), ``ray_tune`` (Ray Tune + Optuna, with
its ``trainable`` and its driver-side ``recorder``), ``keras_tuner`` (one process, no Ray) and
``samplers`` (searchers by name). Each engine module is its own public surface; importing this
package imports neither Ray nor TensorFlow.
"""
