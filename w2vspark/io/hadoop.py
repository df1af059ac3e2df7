"""File operations on Hadoop URIs (local paths, file://, hdfs://, s3a://) through the session's JVM.

Used for what Spark's DataFrame writer does not do itself: existence checks, atomic renames, small JSON files.
"""
from __future__ import annotations

import contextlib
import json
import uuid


class HadoopFS:
    def __init__(self, spark):
        self._spark = spark
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, path):
        return path.getFileSystem(self._conf)

    def exists(self, uri: str) -> bool:
        p = self._path(uri)
        return bool(self._fs(p).exists(p))

    def glob(self, uri: str) -> list[str]:
        """Paths matching ``uri`` (a plain path matches itself when it exists)."""
        p = self._path(uri)
        found = self._fs(p).globStatus(p)
        return [] if found is None else [str(s.getPath().toString()) for s in found]

    def files_under(self, uri: str) -> list[tuple[str, int]]:
        """(path, size) of every file matched by ``uri`` or below a matched folder, hidden files excluded."""
        out = []
        for match in self.glob(uri):
            p = self._path(match)
            it = self._fs(p).listFiles(p, True)
            while it.hasNext():
                status = it.next()
                name = status.getPath().getName()
                if not name.startswith((".", "_")):
                    out.append((str(status.getPath().toString()), int(status.getLen())))
        return out

    def delete(self, uri: str) -> None:
        p = self._path(uri)
        fs = self._fs(p)
        if fs.exists(p):
            fs.delete(p, True)

    def rename(self, src: str, dst: str) -> None:
        s, d = self._path(src), self._path(dst)
        if not self._fs(s).rename(s, d):
            raise OSError(f"could not rename {src} to {dst}")

    def replace(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst``; an existing ``dst`` is moved aside first and deleted only afterwards."""
        aside = None
        if self.exists(dst):
            aside = f"{dst.rstrip('/')}.old-{uuid.uuid4().hex[:8]}"
            self.rename(dst, aside)
        self.rename(src, dst)
        if aside is not None:
            self.delete(aside)

    @contextlib.contextmanager
    def staged(self, out_dir: str, job: str, names):
        """``with fs.staged(out_dir, job, names) as tmp:`` a job writes its outputs ``names`` into the temporary
        folder ``tmp``; when the block ends without an error each is moved into ``out_dir`` (replacing what is
        there), and a name that ``tmp`` does not hold is deleted from ``out_dir``, so no output of an earlier run
        stays beside new ones. ``tmp`` is deleted in any case: a failed job leaves ``out_dir`` as it was."""
        tmp = join(out_dir, f"_tmp-{job}-{uuid.uuid4().hex[:8]}")
        try:
            yield tmp
            for name in names:
                if self.exists(join(tmp, name)):
                    self.replace(join(tmp, name), join(out_dir, name))
                else:
                    self.delete(join(out_dir, name))
        finally:
            self.delete(tmp)

    @contextlib.contextmanager
    def _output(self, uri: str):
        """``with fs._output(uri) as out:`` an output stream to ``uri`` in place; a failed write leaves no file."""
        p = self._path(uri)
        fs = self._fs(p)
        fs.setWriteChecksum(False)  # no .crc beside the file on the local filesystem
        out = fs.create(p, True)
        try:
            yield out
            out.close()
        except BaseException:
            out.close()
            self.delete(uri)
            raise

    def _write(self, uri: str, chunks) -> None:
        """Write an iterable of bytes to ``uri`` in place; a failed write leaves no file behind."""
        with self._output(uri) as out:
            for chunk in chunks:
                out.write(bytearray(chunk))

    def write_text(self, uri: str, text: str) -> None:
        """Write ``text`` in place (for files inside a folder that is itself renamed into place)."""
        self._write(uri, [text.encode("utf-8")])

    def write_chunks(self, uri: str, chunks) -> None:
        """Write an iterable of bytes to ``uri`` through a temporary file and a rename."""
        tmp = f"{uri}.tmp-{uuid.uuid4().hex[:8]}"
        self._write(tmp, chunks)
        self.replace(tmp, uri)

    def concatenate(self, uri: str, head: bytes, parts: list[str]) -> None:
        """Write ``head`` and then the files ``parts`` in order to ``uri``, through a temporary file and a rename.
        The parts' bytes go from stream to stream inside the JVM, a buffer at a time."""
        copy = self._jvm.org.apache.hadoop.io.IOUtils.copyBytes
        tmp = f"{uri}.tmp-{uuid.uuid4().hex[:8]}"
        with self._output(tmp) as out:
            if head:
                out.write(bytearray(head))
            for part in parts:
                src = self._path(part)
                stream = self._fs(src).open(src)
                try:
                    copy(stream, out, 1 << 20, False)
                finally:
                    stream.close()
        self.replace(tmp, uri)

    def read_bytes(self, uri: str) -> bytes:
        p = self._path(uri)
        stream = self._fs(p).open(p)
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode("utf-8")

    def write_json(self, uri: str, obj) -> None:
        self.write_text(uri, json.dumps(obj, indent=2, sort_keys=True) + "\n")

    def read_json(self, uri: str):
        return json.loads(self.read_text(uri))


def join(base: str, *parts: str) -> str:
    """Join URI parts with '/' (never os.path, which would break hdfs:// and s3a:// URIs)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out
