"""ABC tunes: reading, transposition, the corpus, checking and rendering."""
