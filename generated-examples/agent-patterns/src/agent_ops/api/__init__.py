"""HTTP routes.

The template's runtime: each release replaces it (`copier update`). Your code goes in handlers.py or in a plug-in of
your own; the README's "Yours and the template's" says which files are yours.
"""
