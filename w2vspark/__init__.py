"""w2vspark: word2vec skip-gram trained on Apache Spark.

Nothing here touches the JVM at import time; modules that need pyspark import it themselves.
"""
__version__ = "0.1.0"
