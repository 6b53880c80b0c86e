"""Reading and cleaning text: sources, Gutenberg cleaning, plays, transliteration."""
