"""Training, by layer (each module has one job; the math it uses is in :mod:`w2vspark.losses`,
:mod:`w2vspark.sampling`, :mod:`w2vspark.vocab` and :mod:`w2vspark.huffman`):

- :mod:`.task`: the task kernel: minibatch SGD on one slice of sentences, returning sparse deltas (numpy, and the
  compiled step of ``native/`` when it is built);
- :mod:`.combine`: the combining rules that turn the tasks' deltas into one update per row, and the step limit;
- :mod:`.loop`: the sync-round loop (learning rate, divergence guard, checkpoints' state), independent of where
  the tasks run;
- :mod:`.local`: the in-process runner of that loop (the reference the Spark runner is tested against);
- :mod:`.spark_rounds`: the Spark runner (broadcast or files, ``mapInArrow`` tasks, deltas summed on the executors);
- :mod:`.file_exchange`: local mode's exchange of parameters and deltas through files;
- :mod:`.partitions`: the deterministic assignment of sentences to partitions;
- :mod:`.traffic`: the bytes a round moves, from Spark's metrics;
- :mod:`.stage`: the train job's stage: read a run folder, train, write metrics, checkpoints and the model.
"""
