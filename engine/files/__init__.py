"""What is read from and written to disk: gradient sets, our lossless .dat format with its
streaming reader, the readers of other people's gradient files (engine.files.readers), model
and data files, and the text, regular-file and atomic-write primitives they share.

Imports: engine.net and engine.errors. Reading a file never executes anything from it.
"""
