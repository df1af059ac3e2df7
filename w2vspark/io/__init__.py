"""Files: :mod:`.hadoop` (operations on Hadoop URIs through the session's JVM), :mod:`.atomic` (local writes that
never leave half-written output), :mod:`.model_files` (models and checkpoints on Hadoop URIs, written through
Spark) and :mod:`.tables` (reading users' tables with errors that name the file)."""
