"""Hand-written training examples for the duplicate, overlap and search tests.

DISTINCT: (user, assistant) examples on varied topics, some deliberately close in
topic (two Python list questions, two bread questions) so that the report has to
tell "same subject" from "same example".
PARAPHRASES: pairs of one example written twice, the second reworded the way a
dataset gets near-duplicates: the prompt reworded, the answer rephrased or
reordered, the facts unchanged.
"""

from __future__ import annotations

Example = tuple[str, str]

DISTINCT: list[Example] = [
    (
        "How do I reverse a list in Python?",
        "Use slicing, items[::-1], to get a reversed copy, or items.reverse() to reverse it in place.",
    ),
    (
        "How can I remove duplicates from a Python list but keep the order?",
        "Use list(dict.fromkeys(items)); dictionaries keep insertion order since Python 3.7.",
    ),
    (
        "What is the difference between a process and a thread?",
        "A process has its own memory space; threads share the memory of the process that owns them, "
        "so they are cheaper to create but need synchronization.",
    ),
    (
        "Write a SQL query that counts orders per customer.",
        "SELECT customer_id, COUNT(*) AS orders FROM orders GROUP BY customer_id ORDER BY orders DESC;",
    ),
    (
        "Why does my sourdough bread come out dense?",
        "Usually the starter was not active enough or the dough was under-proofed. Feed the starter until "
        "it doubles in 4-6 hours and let the dough rise until it is airy and jiggly.",
    ),
    (
        "How long should I knead bread dough by hand?",
        "About 10 minutes, until the dough is smooth and passes the windowpane test.",
    ),
    (
        "What documents do I need to travel from the US to Canada by car?",
        "A valid passport or passport card, or a NEXUS card; bring the vehicle registration and proof of "
        "insurance too.",
    ),
    (
        "Suggest a three-day itinerary for Kyoto.",
        "Day 1: Fushimi Inari early, then Gion in the evening. Day 2: Arashiyama bamboo grove and Tenryu-ji. "
        "Day 3: Kinkaku-ji, Ryoan-ji and Nishiki Market.",
    ),
    (
        "How much water should an adult drink per day?",
        "Around 2 to 3 litres from all drinks and food for most adults, more in heat or with exercise.",
    ),
    (
        "What are the early signs of dehydration?",
        "Thirst, dark yellow urine, dry mouth, tiredness and headache.",
    ),
    (
        "Explain compound interest with an example.",
        "Interest is added to the principal, so next year's interest is earned on it too: 1,000 at 5% "
        "becomes 1,050 after one year and 1,102.50 after two.",
    ),
    (
        "Should I pay off my credit card or build an emergency fund first?",
        "Keep a small buffer of about one month of expenses, then put extra money on the high-interest card; "
        "card interest usually costs more than savings earn.",
    ),
    (
        "Who was the first emperor of Rome?",
        "Augustus, who ruled from 27 BC until his death in AD 14.",
    ),
    (
        "What caused the fall of the Berlin Wall in 1989?",
        "Mass protests in East Germany, the opening of Hungary's border, and a botched announcement by "
        "Guenter Schabowski on 9 November that travel was allowed immediately.",
    ),
    (
        "Why is the sky blue?",
        "Air molecules scatter short blue wavelengths of sunlight much more than red ones (Rayleigh "
        "scattering), so blue light reaches us from every direction.",
    ),
    (
        "What is the boiling point of water at the top of Mount Everest?",
        "About 70 degrees Celsius, because the air pressure there is roughly a third of sea level.",
    ),
    (
        "How do I say 'where is the train station' in Spanish?",
        "'Donde esta la estacion de tren?'",
    ),
    (
        "What is the difference between 'ser' and 'estar'?",
        "'Ser' describes lasting identity and characteristics; 'estar' describes states, locations and "
        "conditions that can change.",
    ),
    (
        "When should I plant tomatoes outdoors?",
        "After the last frost, once night temperatures stay above 10 degrees Celsius.",
    ),
    (
        "How often should I water a snake plant?",
        "Every two to three weeks, letting the soil dry out completely in between; less in winter.",
    ),
    (
        "How do I check my car's tire pressure?",
        "With the tires cold, press a gauge onto the valve stem and compare the reading to the sticker "
        "inside the driver's door.",
    ),
    (
        "What does the check engine light mean?",
        "The engine computer stored a fault code. It can be as small as a loose fuel cap; an OBD-II reader "
        "shows the code.",
    ),
    (
        "How do I stop my puppy from biting?",
        "Yelp and stop playing when the teeth touch skin, then redirect to a chew toy; be consistent and "
        "reward gentle play.",
    ),
    (
        "Can cats eat tuna?",
        "A little plain tuna as an occasional treat is fine, but a regular tuna diet causes nutritional "
        "deficiencies and mercury exposure.",
    ),
    (
        "Give me a beginner full-body workout.",
        "Three sets each of squats, push-ups, dumbbell rows, glute bridges and a 30-second plank, three times a week.",
    ),
    (
        "How can I improve my 5k running time?",
        "Add one interval session and one tempo run each week, keep the other runs easy, and sleep well.",
    ),
    (
        "What is a chord progression?",
        "A sequence of chords that forms a song's harmony, such as I-V-vi-IV in many pop songs.",
    ),
    (
        "How do I tune a guitar to standard tuning?",
        "From the thickest string to the thinnest: E A D G B E. Use a clip-on tuner or tune each string to "
        "the fifth fret of the one above it.",
    ),
    (
        "What is the statute of limitations?",
        "The deadline for starting a legal case; after it passes, the claim can no longer be brought.",
    ),
    (
        "Do I need a lawyer for small claims court?",
        "Usually not; small claims courts are designed for people representing themselves, and some do "
        "not allow lawyers at all.",
    ),
    (
        "What is the derivative of x squared?",
        "2x.",
    ),
    (
        "Solve 3x + 7 = 22.",
        "Subtract 7 from both sides to get 3x = 15, then divide by 3: x = 5.",
    ),
    (
        "Write a polite email asking my manager for a day off next Friday.",
        "Hi Anna, I would like to take next Friday off for a personal matter. My tasks are on track and "
        "Tom has agreed to cover urgent requests. Please let me know if that works. Thanks, Sam",
    ),
    (
        "How do I decline a meeting invitation politely?",
        "Thank them, say you cannot attend, and offer an alternative: 'Thanks for the invite. I can't make "
        "it, but I'm happy to review the notes or meet on Thursday.'",
    ),
    (
        "My order arrived damaged. What should I do?",
        "I'm sorry about that. Please send a photo of the damage and your order number, and we'll ship a "
        "replacement or refund you, whichever you prefer.",
    ),
    (
        "How do I reset my account password?",
        "Click 'Forgot password' on the login page, enter your email, and follow the link we send you "
        "within 30 minutes.",
    ),
    (
        "How do I fix a leaking faucet?",
        "Turn off the water under the sink, take the handle off, replace the worn washer or cartridge, and reassemble.",
    ),
    (
        "What size drill bit do I need for a 6 mm wall plug?",
        "A 6 mm bit: the plug should fit snugly in a hole of its own diameter.",
    ),
    (
        "What does aperture do in photography?",
        "It sets how wide the lens opens: a wide aperture (small f-number) lets in more light and blurs "
        "the background.",
    ),
    (
        "How do I take sharp photos at night without a tripod?",
        "Raise the ISO, open the aperture, use image stabilization, brace against something solid and shoot a burst.",
    ),
    (
        "What is a REST API?",
        "An HTTP interface where URLs name resources and methods such as GET, POST, PUT and DELETE act on "
        "them, usually exchanging JSON.",
    ),
    (
        "Explain Git rebase versus merge.",
        "Merge joins two histories with a merge commit; rebase replays your commits on top of the other "
        "branch, giving a linear history but rewriting commit ids.",
    ),
    (
        "What is photosynthesis?",
        "The process by which plants use light energy to turn carbon dioxide and water into glucose and oxygen.",
    ),
    (
        "How far is the Moon from Earth?",
        "About 384,400 kilometres on average.",
    ),
    (
        "Recommend a classic science fiction novel.",
        "'The Left Hand of Darkness' by Ursula K. Le Guin: a thoughtful story about a planet whose people "
        "have no fixed sex.",
    ),
    (
        "What is the main theme of 'To Kill a Mockingbird'?",
        "Racial injustice and the loss of innocence, seen through Scout's eyes as her father defends a "
        "Black man falsely accused.",
    ),
    (
        "How do I make a simple vinaigrette?",
        "Whisk three parts olive oil with one part vinegar, a teaspoon of mustard, salt and pepper.",
    ),
    (
        "How long do I boil an egg for a runny yolk?",
        "Six minutes in boiling water, then straight into cold water.",
    ),
    (
        "What is the capital of Australia?",
        "Canberra.",
    ),
    (
        "Which countries border Switzerland?",
        "Germany, France, Italy, Austria and Liechtenstein.",
    ),
    (
        "What is inflation?",
        "A general rise in prices over time, which means each unit of money buys less.",
    ),
    (
        "How does a heat pump work?",
        "It moves heat instead of making it: a refrigerant absorbs heat outside, a compressor raises its "
        "temperature, and it releases the heat indoors.",
    ),
    (
        "What is the difference between weather and climate?",
        "Weather is the short-term state of the atmosphere; climate is the average weather of a place over decades.",
    ),
    (
        "Translate 'good morning' into German.",
        "'Guten Morgen.'",
    ),
    (
        "What are the symptoms of burnout?",
        "Exhaustion, cynicism about work, reduced performance, poor sleep and trouble concentrating.",
    ),
    (
        "How can I fall asleep faster?",
        "Keep a fixed wake time, avoid screens and caffeine late, keep the room cool and dark, and get up "
        "if you are awake for more than 20 minutes.",
    ),
    (
        "Write a haiku about autumn.",
        "Red leaves drift and fall / the old pond holds the cold sky / one crow calls, then none",
    ),
    (
        "Give me a name for a coffee shop near the sea.",
        "'Driftwood Roasters'.",
    ),
    (
        "What is a 401(k)?",
        "A US employer-sponsored retirement account where contributions are made from pre-tax salary and "
        "often matched by the employer.",
    ),
    (
        "How is a Roth IRA taxed?",
        "You contribute money that has already been taxed, and qualified withdrawals in retirement are tax-free.",
    ),
    (
        "What is the Pythagorean theorem?",
        "In a right triangle, the square of the hypotenuse equals the sum of the squares of the other two "
        "sides: a^2 + b^2 = c^2.",
    ),
    (
        "How do vaccines work?",
        "They show the immune system a harmless piece or version of a pathogen so it builds antibodies and "
        "memory cells before a real infection.",
    ),
    (
        "What does a JavaScript Promise do?",
        "It represents a value that will be available later; you attach then/catch handlers or await it.",
    ),
    (
        "How do I center a div with CSS?",
        "Make the parent a flex container: display: flex; justify-content: center; align-items: center;",
    ),
    (
        "What is the difference between TCP and UDP?",
        "TCP is connection-based and guarantees ordered, reliable delivery; UDP sends independent datagrams "
        "with no delivery guarantee but lower latency.",
    ),
    (
        "How do I create a virtual environment in Python?",
        "Run python -m venv .venv and activate it with source .venv/bin/activate.",
    ),
    (
        "What is a good stretch for lower back pain?",
        "The child's pose: kneel, sit back on your heels and reach your arms forward on the floor for 30 seconds.",
    ),
    (
        "What should I pack for a week of hiking in the Alps?",
        "Broken-in boots, layers including a waterproof shell, a warm hat, sun protection, a first-aid kit, "
        "a map and refuge reservations.",
    ),
    (
        "Who painted the Mona Lisa?",
        "Leonardo da Vinci, in the early 1500s.",
    ),
    (
        "What is the tallest mountain in Africa?",
        "Mount Kilimanjaro in Tanzania, at 5,895 metres.",
    ),
    (
        "How many players are on a soccer team?",
        "Eleven on the field for each side, including the goalkeeper.",
    ),
    (
        "What are the rules of castling in chess?",
        "The king moves two squares toward a rook and the rook jumps over it; neither may have moved, the "
        "squares between must be empty, and the king may not be in, pass through or land in check.",
    ),
    (
        "How do I get red wine out of a carpet?",
        "Blot, do not rub, then apply a mix of dish soap, white vinegar and warm water and blot again.",
    ),
    (
        "What is the best way to store fresh herbs?",
        "Trim the stems and keep soft herbs like basil in a glass of water; wrap hardy herbs in a damp "
        "towel in the fridge.",
    ),
    (
        "What is machine learning?",
        "A way of building programs that learn patterns from data instead of following hand-written rules.",
    ),
    (
        "What is overfitting?",
        "When a model fits noise in its training data and so does well on that data but poorly on new data.",
    ),
    (
        "How do I write a cover letter?",
        "Address the hiring manager, say which role you want and why, give two concrete achievements that "
        "match the job, and close with a call to action.",
    ),
    (
        "How do I negotiate a higher salary?",
        "Research the market range, anchor near the top with evidence of your impact, and let the employer "
        "make the first concession.",
    ),
    (
        "How do I convert Celsius to Fahrenheit?",
        "Multiply by 9/5 and add 32: 20 degrees Celsius is 68 degrees Fahrenheit.",
    ),
    (
        "What year did humans first land on the Moon?",
        "1969, with Apollo 11.",
    ),
    # Template siblings: the same question shape with a different subject and answer.
    # Real datasets are full of these; they are different examples, not duplicates.
    (
        "How do I reverse a string in Python?",
        "Slice it with text[::-1]; strings are immutable, so this returns a new string.",
    ),
    (
        "What is the capital of Canada?",
        "Ottawa.",
    ),
    (
        "What is the capital of Brazil?",
        "Brasilia.",
    ),
    (
        "Translate 'good night' into German.",
        "'Gute Nacht.'",
    ),
    (
        "Translate 'good morning' into French.",
        "'Bonjour.'",
    ),
    (
        "Solve 5x - 3 = 12.",
        "Add 3 to both sides to get 5x = 15, then divide by 5: x = 3.",
    ),
    (
        "What is the derivative of x cubed?",
        "3x^2.",
    ),
    (
        "How do I convert Fahrenheit to Celsius?",
        "Subtract 32 and multiply by 5/9: 68 degrees Fahrenheit is 20 degrees Celsius.",
    ),
    (
        "How do I change the email address on my account?",
        "Go to Settings, then Profile, enter the new address and confirm it from the link we email you.",
    ),
    (
        "How do I update my payment method?",
        "Open Settings, then Billing, choose Payment method and enter the new card details.",
    ),
    (
        "How long do I boil an egg for a hard yolk?",
        "Ten to twelve minutes in boiling water, then cool it in ice water so it peels easily.",
    ),
    (
        "How often should I water a cactus?",
        "About once a month in the growing season and barely at all in winter; let the soil dry completely.",
    ),
    (
        "Who painted The Starry Night?",
        "Vincent van Gogh, in 1889.",
    ),
    (
        "What is the tallest mountain in South America?",
        "Aconcagua in Argentina, at 6,961 metres.",
    ),
    (
        "Write a haiku about winter.",
        "Snow on the pine bough / footprints fill before the gate / the kettle murmurs",
    ),
    (
        "How many players are on a basketball team?",
        "Five on the court for each side.",
    ),
    (
        "What year did the Berlin Wall fall?",
        "1989, on the night of 9 November.",
    ),
    (
        "Write a polite email asking my manager to work from home next Monday.",
        "Hi Anna, could I work from home next Monday? I'll be online all day and available for the team "
        "meeting by video. Please let me know if that's fine. Thanks, Sam",
    ),
]

PARAPHRASES: list[tuple[Example, Example]] = [
    (
        (
            "How do I sort a dictionary by value in Python?",
            "Use sorted(d.items(), key=lambda item: item[1]) and wrap it in dict() if you need a dictionary back.",
        ),
        (
            "In Python, how can I sort a dict by its values?",
            "Call sorted(d.items(), key=lambda item: item[1]); pass the result to dict() to get a dictionary again.",
        ),
    ),
    (
        (
            "What is a closure in JavaScript?",
            "A closure is a function that remembers the variables of the scope where it was created, even "
            "after that scope has finished running.",
        ),
        (
            "Can you explain what a JavaScript closure is?",
            "A closure is a function that keeps access to the variables of the scope it was defined in, even "
            "once that outer scope has returned.",
        ),
    ),
    (
        (
            "How do I undo the last git commit but keep my changes?",
            "Run git reset --soft HEAD~1; the commit is removed and its changes stay staged.",
        ),
        (
            "How can I undo my most recent git commit without losing the changes?",
            "Use git reset --soft HEAD~1. It removes the commit and keeps the changes staged.",
        ),
    ),
    (
        (
            "What is the difference between a list and a tuple in Python?",
            "Lists are mutable and tuples are immutable; tuples can be dictionary keys and are slightly faster.",
        ),
        (
            "In Python, how does a tuple differ from a list?",
            "A tuple is immutable while a list is mutable, so tuples can serve as dictionary keys and are a "
            "bit faster.",
        ),
    ),
    (
        (
            "How do I make fluffy pancakes?",
            "Use buttermilk, do not overmix the batter (lumps are fine), let it rest for 10 minutes, and "
            "cook on a medium-hot griddle.",
        ),
        (
            "What's the secret to fluffy pancakes?",
            "Make the batter with buttermilk, leave it lumpy instead of overmixing, rest it 10 minutes, and "
            "cook on a griddle over medium-high heat.",
        ),
    ),
    (
        (
            "How do I cook rice on the stove?",
            "Rinse one cup of rice, add 1.5 cups of water and a pinch of salt, bring to a boil, cover and "
            "simmer on low for 15 minutes, then rest 10 minutes.",
        ),
        (
            "What's the way to cook rice on a stovetop?",
            "Rinse a cup of rice, add one and a half cups of water and some salt, boil, then cover and "
            "simmer on low heat for 15 minutes and let it rest for 10.",
        ),
    ),
    (
        (
            "What is the best time of year to visit Iceland?",
            "June to August for midnight sun, open highland roads and hiking; September to March if you want "
            "to see the northern lights.",
        ),
        (
            "When is the best time to go to Iceland?",
            "Summer, June to August, for the midnight sun, hiking and open highland roads; September through "
            "March to see the northern lights.",
        ),
    ),
    (
        (
            "Do I need a visa to visit Japan as a EU citizen?",
            "No, EU citizens can stay in Japan up to 90 days visa-free for tourism; a valid passport is enough.",
        ),
        (
            "As a citizen of the EU, do I need a visa for a trip to Japan?",
            "No. EU citizens may visit Japan for up to 90 days for tourism without a visa, with a valid passport.",
        ),
    ),
    (
        (
            "What are the symptoms of the flu?",
            "Sudden fever, chills, muscle aches, cough, sore throat, headache and fatigue.",
        ),
        (
            "What symptoms does influenza cause?",
            "Fever that starts suddenly, chills, aching muscles, a cough, a sore throat, headache and tiredness.",
        ),
    ),
    (
        (
            "How much sleep does a teenager need?",
            "Teenagers need about 8 to 10 hours of sleep per night.",
        ),
        (
            "How many hours of sleep should a teenager get?",
            "About 8 to 10 hours each night is recommended for teenagers.",
        ),
    ),
    (
        (
            "What is an index fund?",
            "A fund that tracks a market index like the S&P 500, offering broad diversification at low cost.",
        ),
        (
            "Can you explain what an index fund is?",
            "An index fund follows a market index such as the S&P 500, giving you wide diversification with low fees.",
        ),
    ),
    (
        (
            "How do I create a monthly budget?",
            "List your income, track your expenses for a month, sort them into needs, wants and savings, and "
            "set a limit for each category.",
        ),
        (
            "What steps should I follow to make a monthly budget?",
            "Write down your income, track a month of spending, group it into needs, wants and savings, and "
            "give each group a limit.",
        ),
    ),
    (
        (
            "Why did the Roman Empire fall?",
            "A mix of causes: political instability, economic trouble, overreliance on mercenaries, pressure "
            "from migrating peoples and the split into East and West.",
        ),
        (
            "What caused the fall of the Roman Empire?",
            "Several causes together: unstable politics, economic problems, dependence on mercenaries, "
            "invasions by migrating peoples, and the division into East and West.",
        ),
    ),
    (
        (
            "When did World War II end?",
            "In Europe on 8 May 1945, and in the Pacific on 2 September 1945 when Japan formally surrendered.",
        ),
        (
            "What date did the Second World War end?",
            "It ended in Europe on 8 May 1945 and in the Pacific on 2 September 1945, with Japan's formal surrender.",
        ),
    ),
    (
        (
            "Why do we have seasons?",
            "Earth's axis is tilted about 23.5 degrees, so each hemisphere gets more direct sunlight during "
            "part of the year and less during the other part.",
        ),
        (
            "What causes the seasons on Earth?",
            "The tilt of Earth's axis, about 23.5 degrees, means each hemisphere receives more direct "
            "sunlight for part of the year and less for the rest.",
        ),
    ),
    (
        (
            "What is DNA?",
            "DNA is the molecule that carries genetic instructions in living organisms, built as a double "
            "helix of nucleotides.",
        ),
        (
            "Can you tell me what DNA is?",
            "DNA is the double-helix molecule of nucleotides that stores the genetic instructions of living things.",
        ),
    ),
    (
        (
            "How do I say thank you in Japanese?",
            "Say 'arigatou', or 'arigatou gozaimasu' to be more polite.",
        ),
        (
            "What is the Japanese for thank you?",
            "'Arigatou', or the more polite 'arigatou gozaimasu'.",
        ),
    ),
    (
        (
            "What is the best way to learn French vocabulary?",
            "Use spaced repetition flashcards every day, learn words in context from sentences, and read or "
            "listen to French you enjoy.",
        ),
        (
            "How can I learn French vocabulary effectively?",
            "Review spaced-repetition flashcards daily, learn words in context through sentences, and read "
            "and listen to French content you like.",
        ),
    ),
    (
        (
            "How do I get rid of aphids on my roses?",
            "Spray them off with a strong jet of water, then use insecticidal soap, and encourage ladybugs, "
            "which eat aphids.",
        ),
        (
            "How can I remove aphids from rose bushes?",
            "Blast them off with a strong spray of water, follow up with insecticidal soap, and attract "
            "ladybugs that feed on aphids.",
        ),
    ),
    (
        (
            "How often should I change my car's oil?",
            "Every 5,000 to 7,500 miles for most modern cars with synthetic oil; check your owner's manual.",
        ),
        (
            "How frequently do I need an oil change?",
            "For most modern cars using synthetic oil, every 5,000 to 7,500 miles; your owner's manual has "
            "the exact interval.",
        ),
    ),
    (
        (
            "Why is my car battery dying overnight?",
            "Something is draining it while the car is off, such as a light left on or a faulty module, or "
            "the battery is old and cannot hold a charge.",
        ),
        (
            "What would cause my car battery to go dead overnight?",
            "A parasitic drain while the car is off, like a light left on or a faulty module, or an old "
            "battery that no longer holds its charge.",
        ),
    ),
    (
        (
            "How often should I feed my adult dog?",
            "Twice a day is best for most adult dogs, splitting the daily amount into a morning and an evening meal.",
        ),
        (
            "How many times a day should an adult dog eat?",
            "Most adult dogs do best on two meals a day, with the daily amount split between morning and evening.",
        ),
    ),
    (
        (
            "How do I build muscle as a beginner?",
            "Train each muscle group two or three times a week with compound lifts, add weight gradually, "
            "eat enough protein and sleep well.",
        ),
        (
            "As a beginner, how can I gain muscle?",
            "Work every muscle group 2-3 times weekly with compound exercises, increase the weight bit by "
            "bit, get enough protein and sleep.",
        ),
    ),
    (
        (
            "What is the Pomodoro technique?",
            "A time-management method: work for 25 minutes, take a 5-minute break, and after four rounds "
            "take a longer break.",
        ),
        (
            "Can you explain the Pomodoro technique?",
            "It's a time-management method where you work for 25 minutes, rest for 5, and take a longer "
            "break after four rounds.",
        ),
    ),
    (
        (
            "How do I read sheet music?",
            "Learn the lines and spaces of the treble and bass clefs, then the note values like whole, half "
            "and quarter notes, and the time signature.",
        ),
        (
            "How can I learn to read sheet music?",
            "Start with the lines and spaces of the treble and bass clef, then learn note values such as "
            "whole, half and quarter notes, and the time signature.",
        ),
    ),
    (
        (
            "What is a copyright?",
            "A legal right that gives the creator of an original work exclusive control over copying and "
            "distributing it for a limited time.",
        ),
        (
            "Can you explain what copyright is?",
            "Copyright is a legal right giving the creator of an original work exclusive control over its "
            "copying and distribution for a limited period.",
        ),
    ),
    (
        (
            "How do I calculate the area of a circle?",
            "Multiply pi by the radius squared: A = pi * r^2.",
        ),
        (
            "What is the formula for the area of a circle?",
            "The area is pi times the radius squared, A = pi * r^2.",
        ),
    ),
    (
        (
            "Write a short thank-you note to a colleague who helped me with a project.",
            "Hi Maria, thank you so much for your help with the migration project. Your quick fixes saved us "
            "days. I really appreciate it!",
        ),
        (
            "Draft a brief thank-you message for a coworker who helped on my project.",
            "Hi Maria, thanks a lot for helping with the migration project. Your fast fixes saved us days, "
            "and I truly appreciate it!",
        ),
    ),
    (
        (
            "I was charged twice for my subscription. Can you help?",
            "I'm sorry about the double charge. I've refunded the duplicate payment; it will appear on your "
            "statement within 5 to 7 business days.",
        ),
        (
            "My subscription was billed twice, can you fix it?",
            "Sorry for the duplicate charge. I have refunded the extra payment, and it should show on your "
            "statement within 5-7 business days.",
        ),
    ),
    (
        (
            "How do I cancel my subscription?",
            "Go to Settings, then Billing, and click Cancel subscription; you keep access until the end of "
            "the current billing period.",
        ),
        (
            "How can I cancel my subscription?",
            "Open Settings, go to Billing and choose Cancel subscription. You will keep access until the "
            "current billing period ends.",
        ),
    ),
    (
        (
            "How do I patch a hole in drywall?",
            "Cover small holes with spackle; for larger ones, apply a mesh patch, spread joint compound over "
            "it, let it dry, sand and paint.",
        ),
        (
            "What's the way to fix a hole in drywall?",
            "Fill small holes with spackle; for bigger holes put on a mesh patch, cover it with joint "
            "compound, let it dry, then sand and paint.",
        ),
    ),
    (
        (
            "What is the rule of thirds in photography?",
            "Divide the frame into a 3x3 grid and place the subject along the lines or at their "
            "intersections for a more balanced composition.",
        ),
        (
            "Can you explain the rule of thirds for photos?",
            "Split the frame into a three-by-three grid and put the subject on the lines or where they "
            "intersect to get a more balanced composition.",
        ),
    ),
    (
        (
            "What is Docker used for?",
            "Docker packages an application with its dependencies into a container, so it runs the same way "
            "on any machine.",
        ),
        (
            "What do people use Docker for?",
            "Docker bundles an application and its dependencies into a container so it runs identically on "
            "any machine.",
        ),
    ),
    (
        (
            "How do black holes form?",
            "When a very massive star runs out of fuel, its core collapses under its own gravity into a "
            "point so dense that not even light can escape.",
        ),
        (
            "How is a black hole formed?",
            "A very massive star exhausts its fuel and its core collapses under gravity into something so "
            "dense that even light cannot escape.",
        ),
    ),
    (
        (
            "Can you recommend a good mystery novel?",
            "Try 'The Murder of Roger Ackroyd' by Agatha Christie; its twist ending is still famous.",
        ),
        (
            "Recommend me a good mystery book.",
            "I'd suggest Agatha Christie's 'The Murder of Roger Ackroyd', which has a famously surprising "
            "twist ending.",
        ),
    ),
    (
        (
            "How do I make cold brew coffee?",
            "Mix one part coarsely ground coffee with four parts cold water, steep it in the fridge for 12 "
            "to 18 hours, then strain.",
        ),
        (
            "What's the method for making cold brew coffee?",
            "Combine coarse coffee grounds and cold water at a 1:4 ratio, let it steep in the fridge 12-18 "
            "hours, and strain it.",
        ),
    ),
    (
        (
            "What is the largest ocean on Earth?",
            "The Pacific Ocean, covering about 165 million square kilometres.",
        ),
        (
            "Which ocean is the biggest in the world?",
            "The Pacific Ocean is the largest, at roughly 165 million square kilometres.",
        ),
    ),
    (
        (
            "What is a recession?",
            "A significant decline in economic activity lasting months, often defined as two consecutive "
            "quarters of falling GDP.",
        ),
        (
            "Can you define a recession?",
            "A recession is a significant drop in economic activity lasting several months, commonly defined "
            "as two quarters in a row of falling GDP.",
        ),
    ),
    (
        (
            "How do I meditate as a beginner?",
            "Sit comfortably, close your eyes, and focus on your breath for five minutes; when your mind "
            "wanders, gently bring it back.",
        ),
        (
            "What's a simple way for a beginner to start meditating?",
            "Sit in a comfortable position, close your eyes and focus on your breathing for five minutes, "
            "gently returning your attention whenever your mind wanders.",
        ),
    ),
    (
        (
            "Write a short poem about the ocean.",
            "Waves roll in with silver light / whispering secrets to the night / the tide returns what it "
            "once stole / and sings the sea into my soul",
        ),
        (
            "Compose a brief poem about the sea.",
            "Waves roll in with silver light / and whisper secrets to the night / the tide brings back what "
            "once it stole / and sings the sea into my soul",
        ),
    ),
]
