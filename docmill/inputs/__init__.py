"""Input files of a job: links docmill issued, `filetoken://` ids, and guarded http(s) fetches."""
