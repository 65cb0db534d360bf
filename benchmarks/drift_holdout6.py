"""Sixth held-out split for the topic-shift stress test (``holdout6``).

Written blind on 2026-11-29, without seeing the detector or any result, and without reading the
other blind splits, as a sixth held-out split. Same shape as ``HOLDOUT`` in ``drift_sessions.py``:
two new scenarios per domain (four long warm turns, then short scenario follow-ups), six generic
follow-ups per domain and eight casual off-topic threads of three turns. Text uses
``string.Template`` slots (``$ask``), so code with braces needs no escaping.
"""

from __future__ import annotations

from drift_sessions import Scenario, Turn

HOLDOUT6: tuple[Scenario, ...] = (
    # ---------------------------------------------------------------------------------------- negotiation
    Scenario(
        "negotiation",
        "comic-collection-sale",
        "You are a practical resale coach who helps people sell collectibles for a fair price.",
        (
            (
                "I'm selling my late uncle's comic collection: about 340 issues from 1988 to 1997, mostly "
                "Spider-Man and X-Men, bagged and boarded, a few first appearances. I've been asking $ask for the "
                "whole lot. A local shop owner came round yesterday, flipped through two boxes and offered $offer "
                "cash. Is that insulting or just how dealers work?",
                "It's a normal dealer opening: shops usually pay half to two-thirds of resale because they carry "
                "the stock and the risk. Before you counter, find out which issues carry most of the value, "
                "because a lot like this is usually priced by its ten best books.",
            ),
            (
                "I looked up sold listings online. Similar bulk lots from that era went for $low to $high, and "
                "the two first appearances alone sold for roughly a third of that each when graded. Mine aren't "
                "graded. Should I pull those two out and sell them separately?",
                "Pulling the key issues is often smart, but tell the dealer now if you plan to, since his $offer "
                "probably counted on them. Ask him for two numbers: one for the full lot and one without the two "
                "keys, then compare against what they'd fetch alone.",
            ),
            (
                "He said without the two keys he'd only pay about half, and with everything he could stretch "
                "to $counter if I deliver the boxes to his shop this week. Grading would cost me around 40 per "
                "book and take two months. I'd rather have this done before I move in March.",
                "Given your March deadline, $counter for everything with no grading hassle is a solid result. "
                "You could still try $mid, pointing to the sold listings, and offer to deliver on Saturday as your "
                "side of the trade.",
            ),
            (
                "I sent him a message proposing $mid and delivery on Saturday morning. He replied that he can't "
                "go above $final in cash but would add a store credit voucher worth 150 on top. I don't collect "
                "comics myself. Is the voucher worth anything to me?",
                "Only if you can use or resell it; a voucher for a shop you'll never visit is worth close to zero. "
                "Ask whether he'd convert half of it into cash instead, and if not, take $final plus the voucher "
                "and give it to a friend who collects.",
            ),
        ),
        (
            ("He agreed to 75 cash instead of the voucher.", "Good, get the total written on the receipt."),
            ("Should I ask for a bank transfer?", "Yes, a transfer leaves a clean record for both of you."),
            ("Is $final too low really?", "Not for a quick sale with no fees, grading or shipping."),
            ("What about the posters in box four?", "Leave them out and price them separately; he didn't count them."),
            (
                "He wants an inventory list first.",
                "Fair; a simple spreadsheet of title, issue and condition is enough.",
            ),
            ("Do I mention the water stain?", "Yes, disclose it now so he can't renegotiate at the counter."),
            ("Saturday works for him.", "Then confirm the time and the final price in one short message."),
        ),
    ),
    Scenario(
        "negotiation",
        "offsite-hotel-block",
        "You are an events coordinator who helps small teams negotiate with hotels; answer briefly.",
        (
            (
                "I'm organising a three-night team offsite in May for 15 people and need a block of 15 rooms. "
                "The conference hotel near the lake quoted $ask per room per night, breakfast included, and "
                "their public rate for those dates is $list. Our budget is $offer per night. How do I approach "
                "the sales manager?",
                "Lead with the total value: 45 room nights plus likely meeting-room and dinner spend. Ask for "
                "a group rate near $offer, and mention you're flexible on which weekdays if that helps them fill "
                "quieter nights.",
            ),
            (
                "I got two competing quotes: a business hotel in town at $low and a spa hotel at $high, which "
                "has a better meeting room but is a 25-minute drive from the station. The lake hotel is the one "
                "everyone wants. Can I mention the other quotes?",
                "Yes, mention the $low quote plainly without attaching a threat. Say the lake hotel is your first "
                "choice and ask what they can do to get closer to that figure.",
            ),
            (
                "The sales manager came back with $counter per night, but only if we guarantee all 15 rooms "
                "and pay a 30 percent deposit by the end of the month. Two colleagues may not be able to come. "
                "What's the risk in signing that?",
                "The risk is attrition: if two people drop out you still pay for their rooms. Ask for an "
                "attrition clause letting you release up to 10 percent of the block without penalty until "
                "30 days before arrival.",
            ),
            (
                "They accepted a 10 percent release clause and said they could meet us at $mid if we also book "
                "the Thursday dinner in their restaurant for everyone. The dinner is 48 per head, which is "
                "about what we'd spend anyway. Should I take it?",
                "Yes, that's a good package if the dinner was already in your plan. Ask for the meeting room "
                "and the coffee breaks to be included at that rate, then get everything into one signed "
                "contract.",
            ),
        ),
        (
            ("They said the meeting room costs extra.", "Ask for half price on it as a final concession."),
            ("Is $mid the best we'll get?", "Probably, given that they already moved twice."),
            (
                "Can we add a late checkout on Sunday?",
                "Ask for it; hotels often give it free to groups.",
            ),
            ("One colleague needs an accessible room.", "Name it in the contract so it's guaranteed."),
            ("Deposit is due Friday.", "Pay only once the signed contract has the release clause in it."),
            ("What about parking for three cars?", "Request free parking as part of the group package."),
            ("They offered a free welcome drink.", "Take it; small extras add up for the team."),
        ),
        {"ask": ("140", "160", "180", "200", "220")},
    ),
    # ---------------------------------------------------------------------------------------- medical
    Scenario(
        "medical",
        "lightheaded-standing",
        "You are a careful nurse doing a phone triage; be clear, calm and brief, and say when to seek care.",
        (
            (
                "For about two weeks I've been getting dizzy when I stand up quickly, from bed or from the sofa. "
                "My vision goes grey at the edges for three or four seconds and then it passes. I'm 31, I drink "
                "mostly coffee during the day, and a month ago I started a low-salt diet after reading about it.",
                "That pattern fits a short drop in blood pressure on standing, which low fluid and low salt "
                "intake can cause. Drink more water through the day, cut back the coffee a little, and stand "
                "up in stages: sit on the edge of the bed first.",
            ),
            (
                "This morning it happened in a hot shower and I had to sit down on the floor of the tub for a "
                "minute. I didn't pass out and had no chest pain, but my heart was pounding hard. Is the "
                "pounding heart a bad sign?",
                "A fast heartbeat is the body's normal response when pressure drops, so it isn't alarming on "
                "its own. Keep showers cooler and shorter for now, and sit down right away whenever the greying "
                "starts.",
            ),
            (
                "I had my blood pressure taken at the pharmacy: lying down it was 118 over 76 with a pulse of "
                "72, and after standing for three minutes it was 98 over 64 with a pulse of 114. The pharmacist "
                "said I should mention that to a doctor.",
                "The pharmacist is right: a drop of 20 points on standing together with such a big pulse rise "
                "is worth a proper look. Book a GP appointment this week and bring those readings with you.",
            ),
            (
                "My younger sister was diagnosed with POTS two years ago and has almost the same symptoms. "
                "Could that be what I have too, and is there anything I should stop doing until the "
                "appointment?",
                "It's possible, and the family history is useful for your GP to hear. Until then, stop the "
                "low-salt diet, avoid standing still for long periods, and don't drive if you feel lightheaded.",
            ),
        ),
        (
            ("I fainted once at a concert last year.", "Mention that too; past fainting helps the diagnosis."),
            ("Are electrolyte tablets okay to take?", "Yes, they're a reasonable way to add salt and fluid."),
            ("What about compression socks?", "They can help by keeping blood from pooling in the legs."),
            ("It's worse after a big lunch.", "That's common, so smaller meals may help."),
            ("Should I stop the gym?", "Keep exercising, but prefer rowing or cycling over standing work."),
            ("Now my left arm tingles too.", "Call a doctor today if that's new and doesn't go away."),
            ("Is decaf fine?", "Yes, decaf won't worsen this and still counts as fluid."),
        ),
    ),
    Scenario(
        "medical",
        "stye-eyelid",
        "You are a friendly pharmacist who gives practical self-care advice and knows when to refer.",
        (
            (
                "Since Tuesday I've had a red, tender lump on my lower left eyelid right at the lash line. "
                "It's about the size of a grain of rice, the eye waters a bit, and it stings when I blink. I "
                "wear monthly contact lenses and I use eyeliner most days.",
                "That sounds like a stye, an infected lash follicle, which usually clears on its own in about "
                "a week. Use a clean warm compress for ten minutes three or four times a day, and switch to "
                "glasses and no eye makeup until it has gone.",
            ),
            (
                "Today the lump has a small yellow head and it's throbbing a little. My friend says I should "
                "just pop it with a clean needle like a spot. Is that okay, or will it make it worse?",
                "Please don't squeeze or prick it: that can push the infection deeper into the lid. Keep up "
                "the warm compresses; the head usually drains on its own within a day or two.",
            ),
            (
                "It drained last night and feels much better, but now there's a hard, painless bump in the "
                "same spot that doesn't go away. It's been ten days since it started. Is that still the stye?",
                "That's probably a chalazion, a blocked oil gland that can follow a stye. Carry on with warm "
                "compresses and a gentle lid massage towards the lashes; most settle within a few weeks.",
            ),
            (
                "I have a job interview in five days and the bump is quite visible. I also noticed my "
                "eyeliner pencil is over a year old. Can I cover the bump with concealer, and should I replace "
                "my makeup?",
                "Throw away the old eyeliner and any mascara you used while it was infected. A little concealer "
                "on the outer skin is fine for the interview, as long as it stays off the lash line.",
            ),
        ),
        (
            ("When can I go back to contacts?", "Once the lid is calm and the lump is gone for a day or two."),
            ("Is a warm teabag okay as a compress?", "Yes, a clean, warm teabag works as well as a cloth."),
            ("Do I need antibiotic drops?", "Usually not; styes rarely need them."),
            ("The swelling is spreading to my cheek.", "See a doctor today; that could be a spreading infection."),
            ("Can I still go swimming?", "Better to wait until it has fully healed."),
            ("My vision is a bit blurry.", "Get it checked if the blur doesn't clear after blinking."),
        ),
    ),
    # ---------------------------------------------------------------------------------------- math
    Scenario(
        "math",
        "savings-arithmetic-series",
        "You are a patient maths tutor helping a parent support a teenager with homework.",
        (
            (
                "My daughter is 14 and her worksheet is about a girl who saves 5 euros in week 1, 7 euros in "
                "week 2, 9 in week 3, always two more than the week before. The first question asks how much "
                "she puts in during week 20. How do we set that up?",
                "It's an arithmetic sequence with first term 5 and common difference 2. The nth term is "
                "5 + (n - 1) x 2, so week 20 is 5 + 19 x 2 = 43 euros.",
            ),
            (
                "The next question asks for the total saved after 20 weeks. She wrote $wrong, by adding a few "
                "weeks and guessing the pattern. Is there a formula so she doesn't have to add all twenty "
                "numbers?",
                "Yes: the sum is n/2 times (first term + last term), so 20/2 x (5 + 43) = 10 x 48 = 480 euros. "
                "The idea is that pairing the first and last week, then the second and second-to-last, always "
                "gives the same total of 48.",
            ),
            (
                "Question three asks in which week the total first goes over 500 euros. She tried putting 500 "
                "into the sum formula but got stuck solving it. What's the easiest way for a 14-year-old?",
                "The total after n weeks simplifies to n(n + 4), so she can just try values: 20 gives 480, 21 "
                "gives 21 x 25 = 525. The total first passes 500 in week 21.",
            ),
            (
                "The last question compares it with her brother, who starts with 1 euro and doubles it each "
                "week. It asks who has saved more after 10 weeks. Is that the same kind of sequence?",
                "No, doubling is a geometric sequence: his total after 10 weeks is 2^10 - 1 = 1023 euros. Hers "
                "after 10 weeks is 10 x 14 = 140, so he is far ahead even though he started smaller.",
            ),
        ),
        (
            ("So week 21, not 20?", "Yes, week 21, because 480 is still below 500."),
            ("Why divide by two?", "Each pair sums to 48, and 20 weeks make only 10 pairs."),
            ("What if she starts with 10?", "Then week 20 is 48 and the total is 580."),
            ("Her textbook writes it with a sigma.", "That's just shorthand for adding up the terms."),
            ("Is the common difference always positive?", "No, it can be negative if amounts go down."),
            ("And after 15 weeks?", "15 x 19 = 285 euros."),
            ("How did you get n(n + 4)?", "Put 5 and 2 into the sum formula and simplify."),
        ),
        {"wrong": ("440", "530", "960", "860")},
    ),
    Scenario(
        "math",
        "rain-barrel-volume",
        "You are a clear, encouraging tutor who explains geometry homework step by step.",
        (
            (
                "My son's homework is about our rain barrel, which is a cylinder 60 cm across and 90 cm tall. "
                "He has to find how many litres it holds when full. He knows the formula is pi r squared h but "
                "isn't sure what to plug in.",
                "The radius is half the width, so r = 30 cm and h = 90 cm. The volume is pi x 30^2 x 90, about "
                "254,470 cubic centimetres, and since 1,000 cubic centimetres is one litre that's about 254 "
                "litres.",
            ),
            (
                "He used 60 as the radius and got over 1,000 litres, which seemed too big even to him. Why is "
                "his answer exactly four times mine, and not just twice?",
                "Because the radius is squared: doubling it from 30 to 60 multiplies r squared by four. That's "
                "a good habit to point out: sanity-check a result against the real object.",
            ),
            (
                "Part b says a hose delivers 12 litres per minute and asks how long it takes to fill the empty "
                "barrel, and how much water is in it when it's two-thirds full. He needs the answers in "
                "minutes and litres.",
                "Filling takes 254.5 / 12, about 21.2 minutes, so roughly 21 minutes. Two-thirds full is "
                "2/3 x 254.5, about 170 litres.",
            ),
            (
                "The last part asks how much paint is needed for the outside: the curved side and the lid, but "
                "not the bottom. One litre of paint covers 4 square metres. How do we find the area?",
                "The curved side is 2 x pi x r x h = 2 x pi x 30 x 90, about 16,965 square centimetres, and the "
                "lid is pi x 30^2, about 2,827. Together that's about 1.98 square metres, so half a litre of "
                "paint is enough.",
            ),
        ),
        (
            ("Why square the radius?", "Area grows in two directions, so the radius counts twice."),
            ("Does using 3.14 for pi matter?", "It changes the answer by less than a litre, so it's fine."),
            ("And in gallons?", "About 67 US gallons, since one gallon is 3.785 litres."),
            ("His answer key says 254.", "Then he's right; it rounded to whole litres."),
            ("What if the barrel is 1 metre tall?", "Then it holds about 283 litres."),
            ("Two coats of paint?", "Double the area, so about one litre in total."),
        ),
    ),
    # ---------------------------------------------------------------------------------------- trip
    Scenario(
        "trip",
        "norway-fjords",
        "You are an experienced Scandinavia travel planner who gives concrete, realistic itineraries.",
        (
            (
                "My partner and I fly into Bergen on 12 June and out of Oslo six days later. We'd love to ride "
                "the Flåm railway, take a ferry on the Nærøyfjord and, if possible, see Geiranger. We have no car "
                "booked yet. Is that realistic in six days?",
                "Bergen, Flåm and the Nærøyfjord fit easily; Geiranger is the stretch, about a full day's drive "
                "north. With a rental car you can do Bergen, Flåm, Geiranger and then drive to Oslo, with two "
                "nights in Bergen and one or two in each other stop.",
            ),
            (
                "Renting one-way from Bergen to Oslo costs a lot more because of the drop-off fee. Is there a "
                "way to see the fjords mostly by public transport instead and only rent for part of it?",
                "Yes: do Bergen to Flåm by train and fjord ferry first, then rent in Flåm or Sogndal only for "
                "the Geiranger leg. Drop the car in Otta and take the train to Oslo, which avoids most of the "
                "one-way fee.",
            ),
            (
                "We're fairly fit. My partner wants to hike Trolltunga, but I've read it's a very long day. "
                "Would that even fit, or is there a shorter hike with a similar view near our route?",
                "Trolltunga is 10 to 12 hours and off your route, so I'd skip it. Near Flåm, the Stegastein "
                "viewpoint and the hike up to Prest give dramatic fjord views in three or four hours.",
            ),
            (
                "Norway is expensive and we'd like to keep food costs down. Hotels include breakfast, but "
                "lunches and dinners add up. Any tips for eating on a budget, and do we need cash anywhere?",
                "Pack a lunch from the breakfast buffet where allowed, buy groceries at Rema or Kiwi, and save "
                "restaurants for one nice dinner. Cards and phone payments work almost everywhere, even on "
                "ferries, so you hardly need cash.",
            ),
        ),
        (
            ("Is the Flåm railway worth the price?", "Yes, once, but book seats early for June."),
            ("Do ferries need booking in June?", "Book the Nærøyfjord ferry ahead; car ferries usually not."),
            ("Will it be light at night?", "Nearly; in mid-June it barely gets dark that far north."),
            ("The hotel in Balestrand is full.", "Try Fjærland or Sogndal, both close by."),
            ("What about the Lærdal tunnel?", "It's 24.5 km long, toll-free, with lit caves to break it up."),
            ("Do we need rain gear?", "Yes, western Norway gets rain even in June."),
            ("Can we swim in the fjord?", "You can, but the water is only about 12 degrees."),
            ("And the day in Oslo?", "See the Opera House roof and the Viking ships museum."),
        ),
    ),
    Scenario(
        "trip",
        "oaxaca-food-trip",
        "You are a relaxed travel advisor who knows southern Mexico well; keep answers practical.",
        (
            (
                "Four of us are going to Oaxaca city for eight days at the end of October, overlapping with "
                "Día de Muertos. We're mostly there for food: markets, a cooking class, a mezcal distillery. We "
                "also want to see Monte Albán and Hierve el Agua. How should we split the days?",
                "Keep the first two days in the city to settle in and eat around the 20 de Noviembre market, "
                "then do Monte Albán one morning and Hierve el Agua with a mezcal stop on another day. Leave "
                "31 October to 2 November free for the altars and cemetery visits.",
            ),
            (
                "Our flight lands at 11 at night on the 27th. A friend says Oaxaca is at high altitude and we "
                "might feel it. Is that real, and should we take it easy on the mezcal the first night?",
                "Oaxaca sits at about 1,550 metres, so most people feel only mild tiredness, if anything. Still, "
                "drink plenty of water the first day and keep the mezcal tasting for the second evening.",
            ),
            (
                "Two of us want to add three days at the beach in Puerto Escondido afterwards. The bus looks "
                "like it takes forever on mountain roads. What's the best way to get there?",
                "The winding road takes six to seven hours by van and many people get carsick. A short flight "
                "of about 40 minutes costs more but saves the day, so book it once your dates are fixed.",
            ),
            (
                "We want to see the Tlacolula Sunday market too, and one friend is vegetarian. How do we fit "
                "that in, and will she manage with all the meat-heavy food like tlayudas and barbacoa?",
                "Go to Tlacolula on Sunday morning and combine it with Mitla or a mezcal village the same day. "
                "Your friend will do fine: ask for tlayudas with beans, cheese and vegetables, and try "
                "quesadillas with squash flowers.",
            ),
        ),
        (
            ("Is Mitla near Hierve el Agua?", "Yes, about 45 minutes apart, so combine them."),
            ("Should we book the cooking class now?", "Yes, classes fill up around Día de Muertos."),
            ("Can tourists visit the cemeteries?", "Yes, quietly and respectfully; ask before photographing."),
            ("What's a tlayuda exactly?", "A large, crisp tortilla with beans, cheese and toppings."),
            ("Is tap water safe?", "No, drink bottled or filtered water."),
            ("Do the markets take cards?", "Mostly not; bring pesos in small notes."),
            ("One of us gets carsick easily.", "Then the flight to the coast is definitely worth it."),
        ),
    ),
    # ---------------------------------------------------------------------------------------- code
    Scenario(
        "code",
        "python-generator-reuse",
        "You are a senior Python reviewer who explains bugs precisely and suggests small fixes.",
        (
            (
                "This script computes the average order value but crashes with ZeroDivisionError on a file "
                "that definitely has rows:\n"
                "def load_rows(path):\n"
                "    with open(path) as f:\n"
                "        for line in f:\n"
                "            yield line.rstrip().split(',')\n\n"
                "rows = load_rows('orders.csv')\n"
                "total = sum(float(r[2]) for r in rows)\n"
                "count = sum(1 for r in rows)\n"
                "print(total / count)\n"
                "Why is count zero?",
                "load_rows is a generator, and a generator can be iterated only once. The first sum consumes "
                "every row, so the second sum sees an empty iterator and count is 0.",
            ),
            (
                "So the easy fix is rows = list(load_rows('orders.csv'))? That works in my test. Is there any "
                "downside, or is that the standard way to do it?",
                "It's correct, but it loads the whole file into memory at once. For small files that's fine; "
                "for large ones, compute both numbers in a single pass:\n"
                "total = count = 0\n"
                "for r in load_rows(path):\n"
                "    total += float(r[2])\n"
                "    count += 1",
            ),
            (
                "Now it fails with ValueError: could not convert string to float: 'amount'. The first line of "
                "the CSV is a header: id,customer,amount. Also some customer names contain commas inside "
                "quotes. Should I skip the first line by hand?",
                "Use the csv module instead of split: it handles quoted commas correctly. With csv.DictReader "
                "the header is read for you, so you can write float(row['amount']) and the code no longer "
                "depends on the column order.",
            ),
            (
                "The production file is about 4 GB with 30 million orders, and the job runs on a small "
                "container with 512 MB of memory. Does the DictReader version keep everything in memory?",
                "No, as long as you loop over the reader directly and never call list on it: csv.DictReader "
                "streams one row at a time. Keep the single-pass loop and memory stays flat whatever the "
                "file size.",
            ),
        ),
        (
            ("What about itertools.tee?", "It works, but it buffers rows, so no memory win here."),
            ("Same bug in load_invoices.py.", "Apply the same single-pass fix there."),
            ("Should load_rows return a list instead?", "No, keep it lazy and let callers decide."),
            ("Tests passed locally, though.", "Your test probably called the sums separately on fresh generators."),
            ("How do I test for this?", "Assert the average on a three-row fixture file."),
            ("What if the file is empty?", "Guard count == 0 and return None or raise a clear error."),
            ("Is DictReader slower?", "Slightly, but the clarity is worth it for this job."),
        ),
    ),
    Scenario(
        "code",
        "dockerfile-layer-cache",
        "You are a pragmatic DevOps reviewer who comments on Dockerfiles in short, direct points.",
        (
            (
                "Every build of our Flask service takes about six minutes in CI, even when I only change one "
                "line of Python. Here is the Dockerfile:\n"
                "FROM python:3.12\n"
                "WORKDIR /app\n"
                "COPY . .\n"
                "RUN pip install -r requirements.txt\n"
                'CMD ["gunicorn", "-b", "0.0.0.0:8000", "app:app"]\n'
                "Why is it so slow?",
                "COPY . . comes before pip install, so any source change invalidates that layer and every "
                "dependency is reinstalled. Copy requirements.txt first, run pip install, and only then copy "
                "the rest of the code.",
            ),
            (
                "That cut the build to under a minute, thanks. But the image is 1.3 GB, and our registry is "
                "complaining. We need gcc only to build one package, psycopg2. What can we do?",
                "Switch to python:3.12-slim and use a multi-stage build: compile wheels in a builder stage with "
                "gcc, then copy only the wheels into a slim final stage. Alternatively, psycopg2-binary avoids "
                "the compiler entirely.",
            ),
            (
                "I noticed the image also contains our .git folder, a local venv and a file called .env with "
                "test credentials. I guess that comes from COPY . . as well?",
                "Yes, COPY copies everything in the build context. Add a .dockerignore listing .git, venv, "
                "__pycache__ and .env, and rotate those test credentials, since they are in old images now.",
            ),
            (
                "Last thing: our security scanner flags that the container runs as root. Is it enough to add "
                "USER nobody at the end, or does gunicorn need root to bind to port 8000?",
                "Port 8000 is above 1024, so no root is needed. Create a dedicated user with RUN useradd "
                "--create-home app, then add USER app before CMD, and make sure any folders it writes to "
                "belong to that user.",
            ),
        ),
        (
            ("Would alpine be even smaller?", "Yes, but musl often breaks Python wheels; slim is safer."),
            ("Should I pin versions in requirements.txt?", "Yes, pin exact versions for reproducible builds."),
            ("CI uses buildx with cache-from.", "Good, that keeps the pip layer cached between runners."),
            ("Is a HEALTHCHECK worth adding?", "Yes, a simple curl on /health helps the orchestrator."),
            ("Where does the .env go now?", "Pass settings as environment variables at runtime."),
            ("gunicorn logs nothing in the container.", "Add --access-logfile - so logs go to stdout."),
        ),
    ),
    # ---------------------------------------------------------------------------------------- roleplay
    Scenario(
        "roleplay",
        "dragon-egg-pass",
        "You are Maro, a grizzled mountain smuggler in a fantasy world; stay in character and keep scenes vivid.",
        (
            (
                "*I pull my cloak tight against the sleet and follow you up the goat track, the satchel with "
                "the dragon egg pressed warm against my ribs.* Maro, how far to the border fort? The egg has "
                "been humming since dusk and I don't like it.",
                "*Maro spits into the snow and squints at the ridge.* Two hours if the track holds, three if it "
                "doesn't. And keep that thing quiet. *He taps the satchel.* Humming means it's close to "
                "hatching, and the fort has a hound that smells warmth.",
            ),
            (
                "*I stop behind a boulder and lower my voice.* Then we can't go through the gate. You said "
                "there's an old miners' tunnel under the fort. Is it still open, or did the garrison seal it "
                "after the last raid?",
                "*He grins, showing a broken tooth.* Sealed with a grate, not stone. The lock is older than "
                "the captain. *He pulls a bent iron pick from his boot.* I'll need a few minutes and you'll "
                "need to keep the egg from singing.",
            ),
            (
                "*Inside the tunnel the egg starts glowing orange through the leather, and a crack runs "
                "along the shell. I kneel and open the satchel.* Maro, it's hatching now, here. What do I do? "
                "If it cries, the guards will hear.",
                "*Maro drops the pick and crouches beside you, eyes wide for once.* Hold it close, skin to "
                "shell. Hatchlings go quiet when they feel a heartbeat. *Above you, boots scrape on stone.* "
                "And breathe slowly, or it'll feel your fear.",
            ),
            (
                "*A tiny silver dragon pushes out of the shell and curls into my palm, blinking at me. It's "
                "silent.* It's so small. Maro, the buyer in Keshet wanted an egg, not a hatchling. What happens "
                "to it now?",
                "*Maro is quiet a long moment, watching the creature breathe.* A hatched dragon bonds with the "
                "first face it sees. *He looks at you.* Sell it now and it'll pine to death in a month. I think "
                "your plans just changed, friend.",
            ),
        ),
        (
            ("*I tuck the hatchling inside my shirt.*", "*Maro nods.* Good. Warm and hidden, that's all it needs."),
            ("What does it eat?", "*He shrugs.* Raw meat, and coal when it's older."),
            ("The hound is barking above us.", "*Maro freezes.* Then we move now, and we don't run."),
            ("*I hand Maro the pick.*", "*He takes it without a word and goes back to the grate.*"),
            ("Will the buyer come after us?", "*A grim smile.* Keshet's buyers always do."),
            ("*The hatchling sneezes a spark.*", "*Maro stamps on the smouldering straw.* Not in here, little one."),
            ("Should I give it a name?", "*He chuckles.* You already have, in your head."),
        ),
    ),
    Scenario(
        "roleplay",
        "sleeper-train-murder",
        "You are Conductor Ilse Navratil on a 1930s night train, narrating a murder mystery in character.",
        (
            (
                "*I step into the corridor of the sleeper car in my dressing gown, the train rattling through "
                "the dark mountains.* Conductor, I heard a thump from compartment 7 and then nothing. The door "
                "is locked and nobody answers. Can you open it?",
                "*Navratil fumbles with her brass key ring, her face pale under the lamp.* That is Herr "
                "Albrecht, the wine merchant from Vienna. *The lock clicks; inside, a man lies slumped across "
                "the berth, a cold cup of tea on the table beside him.* Mein Gott. Don't touch anything.",
            ),
            (
                "*I stay at the doorway and look around carefully.* The window is shut and latched from the "
                "inside. Who else has a key to this compartment, and when did you last see him alive?",
                "*She grips the door frame.* Only I have the master key, and the dining car steward has a "
                "spare. *She checks her pocket watch.* I brought him tea at half past eleven. He was arguing "
                "with someone through the wall, with the lady in compartment 8.",
            ),
            (
                "*I lean closer to the teacup without touching it and sniff.* Bitter almonds. Conductor, who "
                "prepared this tea, and could anyone have reached the cup between the galley and this "
                "compartment?",
                "*Navratil's hand flies to her mouth.* I made it myself in the galley, I swear it. *She hesitates.* "
                "But I set the tray down outside compartment 5 to help a passenger with his luggage. Perhaps a "
                "minute, no more.",
            ),
            (
                "*I turn to face her.* Then I need to speak to the passenger in compartment 5 and the lady in "
                "compartment 8. But quietly: if the killer is aboard, I don't want them warned. How long until "
                "the next station?",
                "*She glances out at the black window.* Ninety minutes to Innsbruck, where the police can board. "
                "*She lowers her voice.* Compartment 5 is Doctor Szabo. And the lady in 8 is his wife, "
                "though they booked separately.",
            ),
        ),
        (
            ("*I knock on compartment 5.*", "*A long pause, then a sleepy voice.* Who's there at this hour?"),
            ("Did Albrecht have enemies?", "*Navratil lowers her eyes.* He owed money to half of Vienna."),
            ("The spare key is missing.", "*She goes white.* Then the steward has some explaining to do."),
            ("*I check the luggage rack.*", "*A leather case sits there, its lock forced open.*"),
            ("What was the argument about?", "*She frowns.* A letter, I think; I heard the word letter twice."),
            ("Lock the dining car.", "*She nods and hurries off, keys jangling.*"),
            ("*I examine Albrecht's hands.*", "*His fingertips are stained with blue ink.*"),
        ),
    ),
)

HOLDOUT6_FOLLOWUPS: dict[str, tuple[Turn, ...]] = {
    "negotiation": (
        ("Should I mention a deadline?", "Only a real one; an invented deadline backfires if they test it."),
        ("Is splitting the difference fair?", "It's a common landing point if both opening numbers were sensible."),
        ("What if they ignore my message?", "Wait two or three days, then send one short, friendly nudge."),
        ("Do I need to justify my number?", "One solid reason helps; a long list of excuses weakens it."),
        ("Could I ask for extras instead?", "Yes, non-cash extras are often easier for them to give."),
        ("How low can I realistically go?", "Set your walk-away number before the next reply and keep to it."),
    ),
    "medical": (
        ("Can I still exercise?", "Light activity is fine if it doesn't make things worse."),
        ("Could it be something else?", "It could, which is why a check-up makes sense if it doesn't settle."),
        ("Does alcohol make it worse?", "It can, so cut back until you feel better."),
        ("Should I see a specialist?", "Start with your GP, who can refer you if needed."),
        ("Do I need any tests?", "Possibly; your doctor will decide after examining you."),
        ("Will it come back?", "It can, but knowing the triggers makes that less likely."),
    ),
    "math": (
        ("Why does that step work?", "Because you do the same thing to both sides, so the balance holds."),
        ("Do I need to show units?", "Yes, examiners expect units in the final answer."),
        ("Would a diagram help?", "Yes, a quick sketch often makes the setup much clearer."),
        ("Can I use a calculator?", "For the arithmetic, yes, but write the formula down first."),
        ("Give me a similar practice problem.", "Change one number in this question and solve it again."),
        ("How many decimal places?", "Two is usually fine unless the question says otherwise."),
    ),
    "trip": (
        ("What's the weather like then?", "Changeable; check the forecast a few days before and pack layers."),
        ("Where should we eat?", "Ask your host for a local favourite away from the main square."),
        ("Is it safe at night?", "The central areas are generally fine with normal city caution."),
        ("How early at the airport?", "Two hours for an international flight is a comfortable margin."),
        ("Should we learn a few phrases?", "Yes, hello, please and thank you go a long way."),
        ("Is a local SIM worth it?", "An eSIM data plan is usually cheaper than roaming."),
    ),
    "code": (
        ("Would a linter have caught this?", "Some would, so it's worth enabling the relevant rule."),
        ("Is the naming okay?", "Mostly; rename the one-letter variables to say what they hold."),
        ("Does this affect performance?", "Only slightly; correctness is the bigger concern here."),
        ("Should I leave a comment there?", "Yes, one line explaining why, not what."),
        ("How do I describe this in the PR?", "State the bug, the cause and the fix in three short lines."),
        ("Is it ready to ship then?", "After that fix and a green CI run, yes."),
    ),
    "roleplay": (
        ("*I keep my voice low.* What now?", "*A whisper back.* Now we wait for the right moment."),
        ("*I glance over my shoulder.*", "*Nothing moves, but the silence feels watched.*"),
        ("How much time do we have?", "*A grim look.* Less than we'd like."),
        ("*I offer my hand.* Together, then.", "*A firm grip.* Together."),
        ("What aren't you telling me?", "*A long silence.* Something I'm not ready to say aloud."),
        ("*I wait and watch.*", "*Minutes pass, and then, faintly, footsteps.*"),
    ),
}

HOLDOUT6_OFFTOPIC: tuple[tuple[Turn, Turn, Turn], ...] = (
    (
        (
            "Unrelated, but how do I sharpen a kitchen knife on a whetstone?",
            "Soak the stone, hold the blade at about 15 to 20 degrees, and draw it across in smooth strokes, "
            "the same number on each side.",
        ),
        ("Coarse side or fine side first?", "Coarse first to shape the edge, then fine to polish it."),
        ("How often should I do it?", "Every few months, with a honing steel in between."),
    ),
    (
        (
            "My kid won a goldfish at the fair and it's in a small bowl. What does it actually need?",
            "A goldfish needs far more than a bowl: at least a 75-litre tank with a filter, and weekly partial "
            "water changes.",
        ),
        ("Can I use tap water?", "Yes, with a dechlorinator added first."),
        ("How often do I feed it?", "Once or twice a day, only what it eats in two minutes."),
    ),
    (
        (
            "How does scoring work in darts?",
            "Each player starts at 501 and subtracts what they score, and they must finish exactly on zero "
            "with a double.",
        ),
        ("What's the highest three-dart score?", "180, three treble twenties."),
        ("And the bullseye?", "The inner bull is 50 and the outer ring is 25."),
    ),
    (
        (
            "Random thought: who actually built Stonehenge?",
            "Neolithic people in Britain built it in stages, starting around 3000 BC, long before the Druids.",
        ),
        ("How did they move the big stones?", "Probably on sledges over timber tracks, with ropes and many people."),
        ("Where did the bluestones come from?", "From the Preseli Hills in Wales, about 240 km away."),
    ),
    (
        ("Why are there two high tides a day?", "The Moon raises a bulge of water on the near side and one opposite."),
        ("Why are some tides bigger?", "Spring tides come when the Sun and Moon line up."),
        ("Where are the biggest tides?", "The Bay of Fundy in Canada, up to about 16 metres."),
    ),
    (
        (
            "Off topic, but my living room radiator is cold at the top and warm at the bottom. My landlord is "
            "away for two weeks and it's getting chilly. Is that something I can fix myself?",
            "That's trapped air: turn the heating off, open the bleed valve at the top with a radiator key until "
            "water spits out, then close it.",
        ),
        ("Where do I get a radiator key?", "Any hardware shop sells them for a couple of euros."),
        ("The boiler pressure dropped afterwards.", "Top it up to about 1.5 bar with the filling loop."),
    ),
    (
        (
            "What does an orchestra conductor actually do during the concert?",
            "They set the tempo, cue entries and shape the dynamics, but most of the real work happens in rehearsal.",
        ),
        ("Couldn't the musicians just follow the first violin?", "Small groups can; big orchestras need one view."),
        ("Why do some conductors not use a baton?", "It's personal style; hands alone can be more expressive."),
    ),
    (
        (
            "By the way, my lawn is full of moss after the winter. Should I just rake it out?",
            "Rake it out, but also fix the cause: moss loves shade, compacted soil and poor drainage.",
        ),
        ("When's the best time?", "Early autumn or mid-spring, when the grass is growing."),
        ("Should I reseed the bare patches?", "Yes, right after raking, and keep the seed moist."),
    ),
)
