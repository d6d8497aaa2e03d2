"""The fixed texts every benchmark speaks, so runs on different days compare.

Change a text and the old results stop being comparable: add a new one instead.
"""

from __future__ import annotations

#: Short replies, the bread and butter of a voice assistant (one sentence each).
SHORT = (
    "Sure, I can help with that.",
    "Your package will arrive tomorrow.",
    "The meeting starts at three o'clock.",
    "I'm sorry, I didn't catch that.",
    "It's twelve degrees and cloudy outside.",
    "Done! Anything else?",
)

#: Paragraphs of three to five sentences, such as a notification read aloud.
PARAGRAPHS = (
    "The library will be closed on Monday for the public holiday. Books that are due "
    "that day can be returned on Tuesday without a fine. The online catalogue stays "
    "open, and renewals work as usual.",
    "Preheat the oven to two hundred degrees. Mix the flour, the sugar and a pinch of "
    "salt in a large bowl. Add the butter in small pieces and rub it in with your "
    "fingertips until the mixture looks like breadcrumbs. Bake for twenty minutes.",
    "Your flight to Lisbon has been delayed by forty minutes. The new departure time "
    "is shown on the screens in the terminal. Boarding will begin at gate twelve. We "
    "apologise for the inconvenience.",
    "Good morning. Today will be mostly sunny, with a light breeze from the west. "
    "Temperatures reach twenty one degrees in the afternoon. Showers are possible "
    "late in the evening, so take an umbrella if you are out after dark.",
)

#: A long article, about 1,400 characters: what a reader app speaks in one request.
LONG_ARTICLE = (
    "Lighthouses once guided nearly every ship that came close to a rocky coast. Each "
    "one had its own pattern of flashes, so that a sailor who counted the seconds "
    "between them could tell exactly which headland lay ahead. The keepers lived in "
    "small cottages at the foot of the tower. They trimmed the wicks, polished the "
    "great lenses and wound the clockwork that turned the light through the night. In "
    "a storm they might not sleep at all. The work was lonely, but many keepers "
    "stayed for decades and raised their families on the cliffs. Over the last "
    "century, electric lamps replaced the oil burners, and automatic switches "
    "replaced the keepers. Satellite navigation now tells a captain where the ship "
    "is to within a few metres, and the old towers matter less than they did. Yet "
    "most of them still shine. A radio can fail and a screen can go dark, while a "
    "light on a hill needs nothing from the ship that sees it. Some towers have "
    "become museums, where visitors climb the spiral stairs and look out over the "
    "water the keepers once watched. Others are rented to holiday makers who want a "
    "quiet week far from the nearest road. A few are still maintained by small teams "
    "who visit by boat a couple of times a year. They clean the solar panels, change "
    "the batteries and check that the light still flashes its old pattern, just as "
    "it did when the first keeper lit the lamp."
)

#: Sentences of the 2,000-character text; the first is what a stream must speak first.
LONG_2000_SENTENCES = (
    "Welcome to the evening news summary.",
    "The city council met this afternoon to discuss the new bicycle lanes planned for "
    "the river district.",
    "After a long debate, the members agreed to build the first section next spring, "
    "starting near the old railway bridge.",
    "Residents who spoke at the meeting were divided.",
    "Some said the lanes would make their daily journey safer, while shop owners "
    "worried about losing parking spaces in front of their doors.",
    "The council promised to review the plan after one year.",
    "In other news, the regional orchestra announced its programme for the autumn season.",
    "It includes three symphonies that have not been performed in the city for more "
    "than twenty years, and a new piece written by a local composer.",
    "Tickets go on sale next Thursday, and students can buy them at half price.",
    "The weather has been unusually warm for the time of year.",
    "Farmers in the valley say the harvest is running about two weeks ahead of "
    "schedule, and the apples are sweeter than usual.",
    "Forecasters expect the warm spell to continue until the weekend, when a band of "
    "rain should move in from the coast.",
    "Temperatures will then fall by several degrees.",
    "At the football stadium, the home team won its third match in a row, scoring "
    "twice in the last ten minutes.",
    "The coach praised the young players who came off the bench and changed the game.",
    "The next match is away from home, against a side that has not lost all season.",
    "Finally, the city zoo welcomed a new arrival this week.",
    "A baby giraffe was born on Tuesday morning and was standing on its long legs within an hour.",
    "Keepers say mother and calf are healthy, and visitors will be able to see them "
    "from the viewing platform starting next month.",
    "The zoo has asked the public to suggest a name, and the winning entry will be "
    "chosen by a group of local school children.",
    "That is all for tonight, thank you for listening, and good night from all of us "
    "here in the newsroom at the end of a long and busy day in the city.",
    "Join us again tomorrow at the usual time.",
)

#: Exactly 2,000 characters: the time-to-first-audio text of bench_http.py.
LONG_2000 = " ".join(LONG_2000_SENTENCES)

if len(LONG_2000) != 2000:  # pragma: no cover - a guard for whoever edits the sentences
    raise RuntimeError(f"LONG_2000 must be 2000 characters, it is {len(LONG_2000)}")

#: The size classes of bench_synthesis.py's real-time-factor table.
CLASSES: dict[str, tuple[str, ...]] = {
    "short": SHORT,
    "medium": PARAGRAPHS,
    "long": (LONG_ARTICLE,),
}
