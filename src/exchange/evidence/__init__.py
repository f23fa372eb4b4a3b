"""Evidence documents: a content-addressed store on disk; the database keeps hashes and metadata."""
