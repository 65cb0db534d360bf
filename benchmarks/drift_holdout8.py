"""Eighth held-out split for the topic-shift stress test (``benchmarks/drift.py``).

Written blind, without seeing the detector or any result, on 2026-11-29 as an eighth held-out split.
Same shape as the other blind splits: two new scenarios per domain (four long warm turns, then short
follow-ups), six generic follow-ups per domain and eight casual off-topic threads of three turns each.
Texts use ``string.Template`` slots (``$ask``, ``$name``...), filled per session by ``drift_sessions``.
"""

from __future__ import annotations

from drift_sessions import Scenario, Turn

HOLDOUT8: tuple[Scenario, ...] = (
    # ----------------------------------------------------------------------------------------
    # Negotiation
    # ----------------------------------------------------------------------------------------
    Scenario(
        "negotiation",
        "sailing-dinghy",
        "You are a level-headed negotiation coach who helps people buy secondhand gear; answer in two or three "
        "sentences.",
        (
            (
                "A member of my sailing club is selling a twelve-foot dinghy with a road trailer and two sails, "
                "asking $ask. The hull has a few gelcoat scratches and the trailer lights don't work. Similar boats "
                "on the club noticeboard went for $low to $high last summer. What should I offer?",
                "Start around $offer and name the flaws plainly: the scratches and the dead trailer lights both "
                "cost money to fix. Since club boats sold between $low and $high, you can justify an opening below "
                "that range without insulting a fellow member.",
            ),
            (
                "I offered $offer after a test sail on Saturday. He said the sails are only two seasons old, came "
                "back with $counter, and mentioned that another member is coming to look on Thursday. Is he "
                "bluffing about the other buyer?",
                "Maybe, maybe not, so don't build your plan on it. Newer sails are a genuine point in his favour, "
                "so meeting him partway at $mid shows good faith while still reflecting the repairs.",
            ),
            (
                "I checked the hull more carefully and found a soft spot near the mast step, about the size of a "
                "palm. A boatyard told me a repair could run 300 to 400. Should I bring this up now or wait until "
                "he answers my $mid?",
                "Bring it up now, because a soft spot is structural, not cosmetic, and it changes the fair price. "
                "Show him the boatyard estimate, explain that $mid assumed a sound hull, and propose $final.",
            ),
            (
                "He was annoyed but admitted the boat sat outside uncovered for a whole winter. He said he can do "
                "$final if I collect it this weekend and pay in cash, but he wants to keep the newer sail bag. Do I "
                "take it?",
                "If the repair fits your budget, $final with a quick collection is a fair outcome, and the sail bag "
                "is a small thing to give up. Ask for the launching trolley in return, and get a written receipt "
                "listing the hull number, the trailer and both sails.",
            ),
        ),
        (
            ("He threw in the trolley.", "Good, note it on the receipt so there's no confusion later."),
            (
                "Do I need to register the trailer?",
                "It depends on your country, so check whether light trailers need their own plate.",
            ),
            (
                "What about the dead trailer lights?",
                "Check the plug and the earth wire first; it's often corrosion and a cheap fix.",
            ),
            (
                "Is $final still fine if the rudder's cracked?",
                "No, a cracked rudder is another repair, so ask for a small reduction or a spare blade.",
            ),
            ("Cash or bank transfer?", "A transfer leaves a record, but cash is fine with a signed receipt."),
            (
                "Should I insure it before towing it home?",
                "Yes, arrange cover from the moment you take it, including third-party liability.",
            ),
            ("He wants to keep the burgee too.", "Let him; a club flag costs little and keeps the goodwill."),
        ),
        {"ask": ("1800", "2200", "2500", "2800")},
    ),
    Scenario(
        "negotiation",
        "tree-surgeon-quote",
        "You are a practical advisor who helps homeowners negotiate with tradespeople; keep answers short and "
        "concrete.",
        (
            (
                "A large oak in my back garden overhangs the neighbour's greenhouse, and a storm took off one limb "
                "last month. The first tree surgeon quoted $ask to reduce the crown by a third and grind out an old "
                "stump by the shed. Two friends paid between $low and $high for similar work. Is his price fair, and "
                "how do I push back?",
                "His quote sits inside the range your friends paid, so it isn't outrageous, but there's room to "
                "talk. Ask him to itemise the crown reduction, the stump grinding and the waste removal separately, "
                "because itemised quotes show where you can trim, for example by keeping the logs yourself.",
            ),
            (
                "He itemised it, with stump grinding at 250 and chipping and removal at 300. I said I'd keep the logs "
                "and the chippings for the paths and offered $offer. He said the oak might have a tree preservation "
                "order that takes paperwork to check, and came back at $counter.",
                "Check the preservation order yourself; the council usually has an online map or answers by email "
                "within days. If there's no order, his paperwork argument shrinks and you can propose $mid for the "
                "work without removal.",
            ),
            (
                "The council confirmed there's no order on the oak, only a conservation area that needs six weeks' "
                "notice. I also got a second quote for $mid from a smaller firm, but they aren't sure they can do "
                "the stump. How do I use that without burning bridges with the first one?",
                "Tell the first surgeon honestly that you have a written quote of $mid for the crown work and ask "
                "whether he can come close. Mention that the six weeks' notice is a simple form you can file "
                "yourself, which removes his paperwork argument without accusing him of anything.",
            ),
            (
                "He said he'd do everything, stump included, for $final if I file the notice myself and wait until "
                "late autumn when his crew is quieter. The neighbour asked whether the branches over her greenhouse "
                "would be done first. Should I accept?",
                "Yes, $final for the full job including the stump is a good result, and autumn suits an oak anyway. "
                "Put the date, the scope and the greenhouse side in writing, ask for proof of his public liability "
                "insurance, and tell your neighbour the expected week.",
            ),
        ),
        (
            ("He wants a deposit of 20 percent.", "That's common; pay it by card or transfer and keep the receipt."),
            (
                "Is his insurance certificate enough?",
                "Check that it's current and that the public liability cover is in the millions.",
            ),
            ("What if it rains that week?", "Agree in writing that weather moves the date but not the price."),
            ("Can he stack the logs by the compost bin?", "Yes, just show him where when the crew arrives."),
            (
                "The neighbour wants a copy of the notice.",
                "Send her one; it's public anyway and it keeps things friendly.",
            ),
            ("Should I tip the crew?", "It isn't expected, but tea and biscuits or a small tip goes down well."),
            ("He asked to be paid in cash.", "Pay the $final by transfer anyway so you have a record."),
        ),
        {"ask": ("1400", "1600", "1800", "2000")},
    ),
    # ----------------------------------------------------------------------------------------
    # Medical
    # ----------------------------------------------------------------------------------------
    Scenario(
        "medical",
        "shin-splints",
        "You are a careful sports-medicine nurse doing a first assessment; answer in two or three sentences and "
        "say when to see a doctor.",
        (
            (
                "I'm $age and started training for a 10k eight weeks ago, going from zero to four runs a week. For "
                "the last $days days I've had an aching pain along the inside of both shins that's worst at the "
                "start of a run. It eases after a mile, then comes back as a dull throb in the evening.",
                "That pattern, a diffuse ache along the inner shin that warms up and returns later, sounds like "
                "medial tibial stress syndrome, often called shin splints. It usually comes from raising running "
                "volume faster than bone and muscle can adapt.",
            ),
            (
                "How do I tell it apart from a stress fracture? On the left leg there's one spot about a hand's "
                "width above the ankle that hurts when I press it with a finger. The right leg is just sore along "
                "a long stretch.",
                "A stress fracture tends to hurt at one small point, often even when walking or at night, while a "
                "broad tender band is more typical of shin splints. Because the left leg has a focal tender spot, "
                "see a doctor, who may arrange an X-ray or an MRI.",
            ),
            (
                "Until I get an appointment, can I keep running? My race is in five weeks and I don't want to lose "
                "fitness. I've been taking $med after runs and icing for ten minutes.",
                "Stop running until the left shin is checked, since running on a possible stress fracture can turn "
                "a small crack into a real break. Cycling or pool running keeps fitness if they don't hurt, and "
                "$med is fine short term, but don't use it to mask pain so you can run.",
            ),
            (
                "My shoes are old trail shoes with about 900 km on them, and I run mostly on pavement. A friend said "
                "I should get a gait analysis, new shoes and maybe insoles. Is that worth it?",
                "Shoes at that mileage have lost much of their cushioning, so replacing them is sensible, especially "
                "for road running. A gait analysis can help but isn't essential, and when you return, raise weekly "
                "distance by around ten percent and mix in softer surfaces.",
            ),
        ),
        (
            ("The doctor said no fracture.", "Good news; a gradual return with rest days should settle it."),
            (
                "How soon can I run again?",
                "Once walking and hopping on the leg are pain-free, start with short easy runs.",
            ),
            ("Should I do calf raises?", "Yes, slow calf raises strengthen the muscles that support the shin."),
            (
                "What about compression sleeves?",
                "They may feel comfortable but don't fix the cause, so treat them as optional.",
            ),
            ("The ache is back after a hill session.", "Drop the hills for two weeks and keep runs on flat ground."),
            ("Is the race still realistic?", "Possibly, if you run it easily and accept a slower time."),
            (
                "The shop says my arches collapse a bit.",
                "Then a supportive shoe or a simple insole may reduce the strain.",
            ),
        ),
        {"age": ("24", "31", "38", "45"), "days": ("five", "ten", "twelve")},
    ),
    Scenario(
        "medical",
        "hay-fever",
        "You are a friendly pharmacist giving first advice; answer in two or three sentences and flag anything "
        "that needs a doctor.",
        (
            (
                "Every year from about $month I get streaming eyes, a blocked nose and bouts of sneezing, mostly in "
                "the mornings. This year it's worse and I wake at night because I can't breathe through my nose. "
                "I'm $age, no asthma as far as I know. What can I take?",
                "This sounds like hay fever, most likely from tree or grass pollen. A non-drowsy antihistamine such "
                "as loratadine once a day is a good start, and a steroid nasal spray like fluticasone helps more "
                "with the blockage if you use it every day.",
            ),
            (
                "I bought cetirizine last week and it helps the sneezing but makes me drowsy at work. The blocked "
                "nose hasn't changed. My eyes also itch so much that I rub them until the lids swell.",
                "Cetirizine makes some people sleepy, so take it in the evening or switch to fexofenadine, which is "
                "less sedating. Add the steroid spray for the blockage, and use antihistamine eye drops and cold "
                "compresses for the itchy, swollen lids.",
            ),
            (
                "Does it matter what I do at home? I sleep with the window open, dry washing on the line, and my "
                "partner's dog sleeps on our bed. I also run in the park most evenings.",
                "Yes, cutting exposure helps: close windows in the evening and at night, and dry washing indoors "
                "during the season. Keep the dog off the bed and wipe its coat after walks, and run in the morning "
                "or after rain, showering when you get home.",
            ),
            (
                "Last night I had a tight chest and a bit of a wheeze after the evening run, which has never "
                "happened before. It settled after about an hour. Is that part of hay fever?",
                "Hay fever can trigger asthma, but a new wheeze and chest tightness should be checked by a doctor, "
                "not just treated at the pharmacy, so book an appointment soon. If you ever struggle to breathe or "
                "can't finish a sentence, call emergency services.",
            ),
        ),
        (
            (
                "The GP gave me a blue inhaler.",
                "Use it before running if the wheeze tends to come on with exercise.",
            ),
            ("Can I use the spray and the drops together?", "Yes, they act in different places and can be combined."),
            ("What about local honey?", "There's no good evidence that it helps, though it won't hurt."),
            (
                "Is the pollen count worse in June?",
                "Grass pollen usually peaks in June, so expect your worst weeks then.",
            ),
            (
                "Does a HEPA filter help?",
                "A bedroom air purifier with a HEPA filter can lower indoor pollen somewhat.",
            ),
            (
                "My nose feels dry and crusty now.",
                "That can come from the spray; aim it slightly outward and try a saline rinse.",
            ),
            (
                "Should I take fexofenadine every day?",
                "Yes, taken daily through the season it works better than only on bad days.",
            ),
        ),
        {"age": ("22", "29", "36", "47"), "month": ("April", "May", "June")},
    ),
    # ----------------------------------------------------------------------------------------
    # Math
    # ----------------------------------------------------------------------------------------
    Scenario(
        "math",
        "work-rate",
        "You are a patient maths tutor for a secondary school student; explain step by step in two or three sentences.",
        (
            (
                "Homework question: Anna can paint a fence in 6 hours and Ben can paint the same fence in 3 hours. "
                "If they work together, how long does it take? I added 6 and 3 and got 9 hours, but that seems too "
                "long.",
                "Good instinct: two people together must be faster than either alone, so the answer is under 3 "
                "hours. Instead of adding times, add rates: Anna paints 1/6 of the fence per hour and Ben paints "
                "1/3, so together they paint 1/6 + 1/3 each hour.",
            ),
            (
                "So 1/6 + 1/3 = 2/9? I added the tops and the bottoms. Then the time would be 9/2, which is 4.5 "
                "hours, still more than 3.",
                "The slip is in the addition: you need a common denominator, not to add tops and bottoms separately. "
                "1/3 is 2/6, so 1/6 + 2/6 = 3/6 = 1/2 of the fence per hour, and the whole fence takes 2 hours.",
            ),
            (
                "Okay, 2 hours makes sense. The next part says a third person, Chloe, joins them and all three "
                "finish in 1.5 hours. How fast is Chloe on her own?",
                "One fence in 1.5 hours is a combined rate of 2/3 of the fence per hour. Anna and Ben already do "
                "1/2, so Chloe's rate is 2/3 - 1/2 = 4/6 - 3/6 = 1/6, which means 6 hours on her own.",
            ),
            (
                "The last one is harder: a tank has two inlet pipes that fill it in 4 and 12 hours, and a drain "
                "that empties it in 6 hours. If all three are open, how long does it take to fill? Do I subtract "
                "the drain?",
                "Yes, the drain works against you, so subtract its rate: 1/4 + 1/12 - 1/6. Over 12 that's 3/12 + "
                "1/12 - 2/12 = 2/12 = 1/6 of the tank per hour, so the tank fills in 6 hours.",
            ),
        ),
        (
            ("Why does the drain get a minus?", "Because it removes water, so its rate counts against the filling."),
            ("What if the drain were faster?", "If the drain beat both inlets together, the tank would never fill."),
            (
                "Can I check it with a table?",
                "Yes, list what each pipe does in 6 hours and check it adds up to one tank.",
            ),
            ("So 1/4 is a rate per hour?", "Yes, one quarter of the tank every hour."),
            ("Is 6 hours right then?", "Yes, 6 hours is correct."),
            (
                "What if Ben stops after one hour?",
                "Then Anna finishes the remaining half alone, which takes her 3 more hours.",
            ),
            (
                "My teacher calls it a reciprocal.",
                "Right, the rate is the reciprocal of the time, like 1/6 for six hours.",
            ),
        ),
    ),
    Scenario(
        "math",
        "gcd-lcm",
        "You are an encouraging maths tutor; explain in two or three short sentences and check the student's "
        "reasoning.",
        (
            (
                "Two buses leave the station at 8:00. The number 14 comes every 12 minutes and the number 9 every 18 "
                "minutes. When do they next leave together? My friend multiplied 12 by 18 and got 216 minutes.",
                "Multiplying gives a common multiple, but not necessarily the smallest, and the question asks for "
                "the next time. You want the least common multiple: 12, 24, 36 and 18, 36 meet at 36, so the buses "
                "leave together again at 8:36.",
            ),
            (
                "Is there a faster way than listing? Our teacher mentioned prime factorisation, but I don't really "
                "get how it gives the LCM.",
                "Break each number into primes: 12 = 2 × 2 × 3 and 18 = 2 × 3 × 3. For the LCM take each prime the "
                "most times it appears in either number, 4 × 9 = 36, and for the GCD take it the fewest times, "
                "2 × 3 = 6.",
            ),
            (
                "Next question: a florist has 84 roses and 60 carnations and wants identical bunches with nothing "
                "left over, as many bunches as possible. I think it's the LCM again, 420?",
                "This one is the GCD, because you're splitting both numbers into equal groups, so the count must "
                "divide both. 84 = 2 × 2 × 3 × 7 and 60 = 2 × 2 × 3 × 5 share 2 × 2 × 3 = 12, so there are 12 "
                "bunches of 7 roses and 5 carnations.",
            ),
            (
                "How do I tell which one a question wants? On tests I always mix them up, especially in the word "
                "problems about tiles and flashing lights.",
                "Ask whether something happens again later, like buses or lights meeting, which is the LCM, or "
                "whether you split things into the biggest equal pieces, like tiles or bunches, which is the GCD. "
                "An LCM is at least the larger number and a GCD at most the smaller, and that size check catches "
                "most mix-ups.",
            ),
        ),
        (
            ("So the lights question is LCM?", "Yes, lights flashing together again is an LCM problem."),
            ("What's the GCD of 45 and 75?", "It's 15, since 45 = 3 × 3 × 5 and 75 = 3 × 5 × 5."),
            ("And their LCM?", "It's 225, from 3 × 3 × 5 × 5."),
            ("Is 72 fine for the buses?", "72 is a common multiple, but 36 comes first, so 8:36 is the answer."),
            (
                "Square tiles on a 120 by 90 floor?",
                "The largest tile side is the GCD, 30, which gives a 4 by 3 grid.",
            ),
            (
                "Why does 12 times 18 work sometimes?",
                "The product equals the LCM only when the numbers share no common factor.",
            ),
            ("Can the GCD be 1?", "Yes, and then the two numbers are called coprime."),
        ),
    ),
    # ----------------------------------------------------------------------------------------
    # Trip
    # ----------------------------------------------------------------------------------------
    Scenario(
        "trip",
        "tasmania-loop",
        "You are an experienced travel planner; give concise, practical advice in two or three sentences.",
        (
            (
                "My partner and I fly into Hobart in $month for $days days and want to loop around Tasmania in a "
                "hire car. We like short hikes, wildlife and good food, but not long days of driving. Our budget is "
                "about $budget Australian dollars for the two of us, excluding flights.",
                "A clockwise loop works well: Hobart and Bruny Island, up the east coast to Freycinet and the Bay of "
                "Fires, across to Launceston and Cradle Mountain, then back south. Keep drives under about three "
                "hours a day with two nights in most places, and your budget covers a small car and mid-range motels.",
            ),
            (
                "How much time should we give Freycinet and Cradle Mountain? I've read about the Wineglass Bay "
                "lookout and the Dove Lake circuit. We're reasonably fit but don't want anything overnight.",
                "Two nights at Freycinet lets you do the Wineglass Bay lookout one morning and a beach walk or kayak "
                "the next day. Give Cradle Mountain two nights as well, since the Dove Lake circuit takes about two "
                "hours and the weather often closes in, and buy a holiday parks pass online for all park entries.",
            ),
            (
                "We really want to see wombats, a platypus and maybe a Tasmanian devil in the wild. Is driving at "
                "dusk safe? The hire company said something about not driving after dark.",
                "Wombats are easy to spot around Cradle Mountain at dusk, platypus sometimes show up in the creeks "
                "there, and wild devils are rare, so a sanctuary is the realistic option. Hire contracts often "
                "discourage night driving because of animal collisions, so reach each base before sunset and watch "
                "wildlife on foot.",
            ),
            (
                "For food we'd love oysters and some whisky or wine tasting. Is MONA worth a full day, and should "
                "we go to Salamanca Market on Saturday?",
                "Yes, MONA easily fills most of a day, and the ferry from Hobart is part of the experience. Salamanca "
                "Market runs on Saturday mornings and is great for local produce, and you can add oysters at "
                "Freycinet or on Bruny and a Tamar Valley winery for tastings.",
            ),
        ),
        (
            ("Do we need a 4WD?", "No, a regular car handles the main loop and the park roads."),
            ("What about Maria Island?", "It's a lovely day trip by ferry from Triabunna, full of wombats."),
            ("Is it cold in $month?", "It can be cool and changeable, so pack layers and a rain jacket."),
            (
                "Can we skip Launceston?",
                "You can, but it's a handy stop for Cataract Gorge and the Tamar wineries.",
            ),
            (
                "The Bruny ferry is booked out.",
                "Turn up early for a sailing anyway, as some space is usually kept for drive-up cars.",
            ),
            (
                "Is the Bay of Fires worth the detour?",
                "Yes, the orange lichen rocks and white beaches are worth half a day.",
            ),
            ("Where do we fill up with fuel?", "Fill up in the bigger towns, as stations are sparse out west."),
        ),
        {
            "days": ("seven", "nine", "ten"),
            "month": ("February", "March", "November"),
            "budget": ("2500", "3200", "4000"),
        },
    ),
    Scenario(
        "trip",
        "georgia-solo",
        "You are a well-travelled trip advisor; answer in two or three practical sentences.",
        (
            (
                "I'm travelling solo to Georgia, the country, for $days days in $month, flying into Tbilisi. I want "
                "a mix of city, mountains and wine country, and I'm fine with minibuses. My budget is around $budget "
                "euros for everything on the ground. How would you split the time?",
                "Spend three nights in Tbilisi, three in Kazbegi for the mountains and two or three in Kakheti for "
                "wine, ideally based in Sighnaghi or Telavi. Guesthouses, marshrutka fares and food are cheap, so "
                "your budget is comfortable and could stretch to Mestia in Svaneti if you have spare days.",
            ),
            (
                "How do I get from Tbilisi to Kazbegi, and is the Gergeti Trinity Church hike hard? I've read that "
                "the Georgian Military Highway can close in bad weather.",
                "Marshrutkas leave Didube station several times a day and take about three hours, or a shared taxi "
                "can stop at Ananuri on the way. The walk up to Gergeti Trinity Church is about an hour and a half "
                "on a steep trail, and since the road closes for snow or landslides, keep a buffer day.",
            ),
            (
                "For Kakheti, should I join a wine tour or go on my own? I'd like to try qvevri wine at small family "
                "cellars, not big tasting rooms, and I don't drive.",
                "Without a car, a small-group tour or a private driver for one day is easiest, and you can ask "
                "specifically for family cellars with qvevri wine. Guesthouse hosts in Sighnaghi or Telavi often "
                "make their own wine and know neighbours who host tastings.",
            ),
            (
                "Any tips on money, SIM cards and safety? I'm a woman travelling alone and I'll be out in Tbilisi's "
                "old town in the evenings.",
                "Cards work in the cities, but carry lari in cash for marshrutkas, guesthouses and villages, and buy "
                "a cheap local SIM at the airport. Central Tbilisi is generally safe at night with normal city "
                "caution, and ride-hailing apps are better than taxis flagged on the street.",
            ),
        ),
        (
            ("Is the sulphur bath worth it?", "Yes, book a private room in Abanotubani for an evening hour."),
            (
                "How early should I leave from Didube?",
                "Take a morning marshrutka so you reach Stepantsminda by lunch.",
            ),
            ("What about Uplistsikhe?", "It's an easy half-day trip from Tbilisi, often combined with Gori."),
            (
                "Do I need a visa?",
                "Many nationalities can stay a year visa-free, but check the rules for your passport.",
            ),
            ("The highway is closed today.", "Stay another night in Tbilisi and try again tomorrow morning."),
            ("Is the tap water safe?", "In Tbilisi it's generally fine, though many visitors prefer bottled."),
            ("Should I tip after a supra?", "Restaurants often add a service charge, so check the bill first."),
        ),
        {
            "days": ("eight", "ten", "twelve"),
            "month": ("May", "June", "September"),
            "budget": ("1200", "1600", "2000"),
        },
    ),
    # ----------------------------------------------------------------------------------------
    # Code
    # ----------------------------------------------------------------------------------------
    Scenario(
        "code",
        "python-aware-datetimes",
        "You are a senior Python developer reviewing code; answer in two or three sentences.",
        (
            (
                "Our nightly report job crashes with TypeError: can't compare offset-naive and offset-aware "
                "datetimes. The code is:\ncutoff = datetime.now() - timedelta(days=1)\n"
                "rows = [r for r in rows if r.created_at > cutoff]\nThe created_at values come from Postgres.",
                "The column is probably timestamptz, so created_at is timezone-aware, while datetime.now() returns a "
                "naive datetime with no tzinfo. Python refuses to compare them because it can't know which zone the "
                "naive one means, so use datetime.now(timezone.utc) on your side.",
            ),
            (
                "I changed it to datetime.utcnow() and the error went away on my laptop, but on the server it still "
                "fails. Shouldn't utcnow() give me UTC?",
                "utcnow() returns the UTC time but still as a naive datetime, so the comparison fails the same way, "
                "and it's deprecated since Python 3.12. Your laptop probably ran against test data with naive "
                "values; datetime.now(timezone.utc) is the fix.",
            ),
            (
                "Fixed. Now the report says 'orders from yesterday', but users in Berlin see orders from 01:00 to "
                "01:00 local time instead of midnight to midnight. The job runs at 00:05 UTC from cron.",
                "Compute the day in the user's zone: start = datetime(y, m, d, tzinfo=ZoneInfo('Europe/Berlin')) and "
                "end = start + timedelta(days=1), then filter created_at >= start and created_at < end. Aware "
                "datetimes compare correctly across zones, and this also handles the 23- and 25-hour days around "
                "DST changes.",
            ),
            (
                "Last thing: a test does assert report.generated_at == datetime(2026, 3, 29, 0, 5) and it fails now. "
                "Should I freeze time with freezegun or just build the expected value differently?",
                "The expected value is naive, so compare with datetime(2026, 3, 29, 0, 5, tzinfo=timezone.utc) "
                "instead. Freezing time is still worth it so the test doesn't depend on when it runs, and add a case "
                "around the late-March DST change, where local-day bugs hide.",
            ),
        ),
        (
            ("Should I store everything in UTC?", "Yes, store UTC and convert to local time only for display."),
            ("What about pytz?", "On Python 3.9 and later, use the built-in zoneinfo instead of pytz."),
            (
                "The CSV export shows +00:00 now.",
                "Convert to local time and format with strftime before writing the rows.",
            ),
            ("Is date.today() safe too?", "It uses the server's zone, so prefer datetime.now(tz).date()."),
            (
                "Windows CI says no time zone found.",
                "Install the tzdata package so zoneinfo has a database on Windows.",
            ),
            (
                "Does Django handle this for me?",
                "Mostly, with USE_TZ = True Django returns aware datetimes.",
            ),
            ("And the cron line itself?", "Keep cron in UTC and do all local-time logic in Python."),
        ),
    ),
    Scenario(
        "code",
        "go-goroutine-fanout",
        "You are a Go reviewer who explains concurrency bugs plainly in two or three sentences.",
        (
            (
                "This fetcher sometimes prints fewer results than URLs and sometimes panics with 'concurrent map "
                "writes':\nfor _, u := range urls {\n    go func() {\n        results[u] = fetch(u)\n    }()\n}\n"
                "fmt.Println(len(results))\nWe're on Go 1.21. What's wrong?",
                "Main prints before the goroutines finish, and several goroutines write to the same map at once, "
                "which Go maps don't allow. On Go 1.21 the closure also shares the loop variable u, so use a "
                "sync.WaitGroup to wait, guard the map with a sync.Mutex and pass u as an argument.",
            ),
            (
                "I added wg.Add(1) inside the goroutine and wg.Wait() after the loop, but it still sometimes returns "
                "early. The code is go func(u string) { wg.Add(1); defer wg.Done(); ... }(u).",
                "wg.Add(1) must run before the goroutine starts, otherwise Wait can be reached while the counter is "
                "still zero. Move wg.Add(1) just above the go statement and keep defer wg.Done() as the first line "
                "inside the function.",
            ),
            (
                "Works now. But with 5,000 URLs the service opens thousands of connections and the remote API starts "
                "returning 429 Too Many Requests. How do I limit it to, say, 20 at a time?",
                "Use a buffered channel as a semaphore, sem := make(chan struct{}, 20), sending before each fetch "
                "and receiving after it. Or use errgroup.Group with SetLimit(20) from golang.org/x/sync, which "
                "handles both the limit and the waiting.",
            ),
            (
                "I switched to errgroup with SetLimit(20). If one fetch fails, I want to cancel the rest instead of "
                "finishing all 5,000. Does errgroup do that automatically?",
                "Only with errgroup.WithContext, whose context is cancelled when the first goroutine returns an "
                "error. Pass that ctx into fetch and build requests with http.NewRequestWithContext so in-flight "
                "calls stop, and g.Wait() will return the first error.",
            ),
        ),
        (
            ("Do I still need the mutex?", "Yes, errgroup limits goroutines but doesn't protect the map."),
            ("Would sync.Map be better?", "Not here; a plain map with a mutex is simpler and fast enough."),
            ("go vet didn't catch the race.", "Run the tests with -race; vet doesn't detect data races."),
            ("Is Go 1.22 different for loop variables?", "Yes, from 1.22 each iteration gets its own variable."),
            ("What about retrying on 429?", "Retry with exponential backoff and respect the Retry-After header."),
            (
                "Should fetch return a struct?",
                "Yes, a result struct holding the URL, the body and the error is clearer.",
            ),
            (
                "The http.Client has no timeout set.",
                "Set a Timeout on the client or rely on a context deadline for each request.",
            ),
        ),
    ),
    # ----------------------------------------------------------------------------------------
    # Roleplay
    # ----------------------------------------------------------------------------------------
    Scenario(
        "roleplay",
        "drowned-city-dive",
        "You are a game master narrating a fantasy underwater expedition; reply in character with actions in "
        "asterisks.",
        (
            (
                "*I check the seal on my brass diving helmet and step off the edge of the raft.* $name, you said the "
                "drowned city of Ilvareth lies forty fathoms down. What exactly are we looking for in there? *I grip "
                "the guide rope as we sink.*",
                "*$name taps the glowing pearl strapped to her wrist, and pale light spreads through the green "
                "water.* The Tide Crown, lost when the sea took Ilvareth three hundred years ago. *She points down at "
                "coral-crusted spires rising from the dark.* The old maps put the vault beneath the Temple of Echoes.",
            ),
            (
                "*I swim toward the temple steps and brush the silt off a carved doorway.* There are runes here, and "
                "a shape like a shell with an eye in it. Can you read them? *A cloud of tiny silver fish bursts out "
                "of a crack beside me.*",
                "*$name drifts closer, bubbles rising from her helmet valve.* It's old Merrish: 'Speak the tide's "
                "name and the door will listen.' *She frowns at the carving.* The shell-eye is the mark of the "
                "Keepers, the priests who stayed behind when the water rose.",
            ),
            (
                "*I press my helmet to the door and hum the low note my grandmother used to sing by the sea.* Maybe "
                "the tide's name is a sound, not a word. *The runes begin to glow faintly.* Did that work?",
                "*A deep grinding shakes the sand, and the stone door slides inward on a rush of cold water.* *$name "
                "grabs your arm to steady you.* It worked, but something else heard it too. *Far off in the dark, "
                "a long shadow turns and starts to circle the spires.*",
            ),
            (
                "*I pull $name inside and we push the door half shut behind us.* What was that thing? *I aim my "
                "harpoon at the gap and check the air gauge on my tank.* We have maybe an hour.",
                "*$name's light trembles over murals of drowned kings.* A leviathan eel; the Keepers bred them to "
                "guard the vault. *She checks her own gauge.* An hour is enough if we move now, and the vault stair "
                "is past the hall of statues.",
            ),
        ),
        (
            ("*I swim past the statues.*", "*One stone head seems to turn as you pass, but $name doesn't notice.*"),
            ("Is that a door or a wall?", "*$name runs her glove along it.* A door, sealed with the same shell-eye."),
            ("*I hum the note again.*", "*The door shudders open, and golden light spills from the chamber beyond.*"),
            ("Do you see the crown?", "*She gasps.* There, on the throne, wrapped in kelp."),
            ("My air gauge is flickering.", "*$name frowns.* Then we take the crown and go, no detours."),
            (
                "*I cut the kelp away with my knife.*",
                "*The crown comes free, and the whole chamber begins to tremble.*",
            ),
            ("Where's the eel now?", "*Its shadow fills the doorway behind you, eyes glowing like lanterns.*"),
        ),
        {"name": ("Ysolde", "Maren", "Kestra", "Tavi")},
    ),
    Scenario(
        "roleplay",
        "gallery-forgery",
        "You are a sharp-witted detective in an interactive museum mystery; stay in character and put actions in "
        "asterisks.",
        (
            (
                "*I hurry across the marble hall of the Whitcombe Gallery, notebook in hand.* $name, the director "
                "says the Vermeer in room six is a fake, swapped sometime after last night's charity gala. Nobody "
                "saw anything and the alarms never went off. Where do we start? *I hand over the guest list.*",
                "*$name runs a finger down the names without looking up.* We start with the painting, not the "
                "people. *Pulling on thin cotton gloves, the inspector tilts the frame away from the wall.* Forgers "
                "get the paint right; they rarely get the back of the canvas right.",
            ),
            (
                "*I lean in with a torch.* The stretcher bars look new, the wood is pale, and the gallery label is "
                "too clean. There's a smudge of something white on the lower corner. *I sniff it carefully.* It "
                "smells like chalk.",
                "*$name scrapes a tiny sample into an envelope.* Not chalk: gesso, still soft, the stuff used to "
                "prime a canvas. *The inspector's eyes narrow.* This was finished within the week, so the forger had "
                "time and access long before the gala.",
            ),
            (
                "*I flip through the guest list.* The restorer, Mr Pell, worked in the conservation studio last "
                "week, and the caterers used the service corridor behind room six. The guard, Dolores, logged off "
                "camera duty for twenty minutes at 11:40. Who do we talk to first?",
                "*$name pockets the envelope.* Dolores, because twenty minutes is exactly how long a rehearsed swap "
                "of a framed panel takes. *A glance down the corridor.* But guards don't buy gesso; someone handed "
                "her a reason to step away.",
            ),
            (
                "*We find Dolores in the security room, nervously stirring her tea.* She says the director himself "
                "phoned at 11:40 and told her to check a van alarm at the loading dock. The phone log shows the call "
                "came from internal extension 214. *I show you the printout.*",
                "*$name reads the printout twice and looks up with a thin smile.* Extension 214 is the conservation "
                "studio, Mr Pell's room. *The paper goes down on the desk.* So someone who could imitate the "
                "director's voice was standing beside the gesso jars last night.",
            ),
        ),
        (
            ("Should we search the studio now?", "*$name nods.* Quietly, before Pell learns we've seen the log."),
            ("*I try the studio door.*", "*It's unlocked, and the smell of fresh varnish hangs in the air.*"),
            ("There's a canvas under a sheet.", "*$name lifts the sheet slowly.* Well, well, a second copy."),
            (
                "Where would he hide the real one?",
                "*The inspector eyes the packing crates.* Somewhere that ships out tomorrow.",
            ),
            ("The crate label says Rotterdam.", "*$name taps the label.* Then we have until the morning tide."),
            ("Do we call the director?", "*A pause.* Not yet; I want to know why Pell could copy his voice."),
            (
                "*I hear footsteps in the corridor.*",
                "*$name switches off the lamp and waves you down behind the crate.*",
            ),
        ),
        {"name": ("Inspector Hale", "Inspector Mbeki", "Inspector Varga")},
    ),
)

HOLDOUT8_FOLLOWUPS: dict[str, tuple[Turn, ...]] = {
    "negotiation": (
        ("Should I mention my budget?", "No, keep your budget to yourself and talk about value instead."),
        ("What if they stop replying?", "Wait a couple of days, then send one short, friendly message."),
        ("Is it okay to walk away?", "Yes, being ready to walk away is your strongest position."),
        ("They said it's their final offer.", "It may be, so decide whether you can live with it."),
        ("How do I put it in writing?", "A short email with the price, what's included and the date is enough."),
        ("Should I meet them in person?", "If it's convenient, yes; agreement often comes easier face to face."),
    ),
    "medical": (
        ("When should I see a doctor?", "If it isn't improving within a week or gets worse, book an appointment."),
        ("Can I still exercise?", "Gentle activity is usually fine as long as it doesn't worsen the symptoms."),
        ("Will it come back?", "It can, so keep up the preventive steps once it settles."),
        ("Anything I should avoid?", "Avoid whatever clearly triggers it, and don't push through sharp pain."),
        ("Is it okay with a glass of wine?", "Usually, but ask the pharmacist about any medicine you're taking."),
        ("Should I keep a symptom diary?", "Yes, noting times and triggers helps a doctor a lot."),
    ),
    "math": (
        ("Can you do that step slower?", "Sure, take one operation at a time and write each line down."),
        ("How do I check my answer?", "Put it back into the original problem and see if it fits."),
        ("Is there a shortcut?", "Often, but learn the full method first so the shortcut makes sense."),
        ("I got a different number.", "Show me your working and we'll find where it went off track."),
        ("Will this be on the exam?", "Problems like this are very common, so it's worth practising."),
        ("Why does that work?", "Because each step keeps the quantities equal, so the result stays correct."),
    ),
    "trip": (
        ("Do we need to book ahead?", "For popular places in high season, yes, a few weeks ahead."),
        ("Is travel insurance worth it?", "Yes, mainly for medical cover and cancellations."),
        ("What should I pack?", "Layers, comfortable walking shoes and a light rain jacket."),
        ("How much cash should I carry?", "Enough for a day or two; cards cover most of the rest."),
        ("Is it easy for a vegetarian?", "Mostly, though rural menus can be limited, so ask ahead."),
        ("Any scams to watch for?", "Mainly overpriced taxis, so use an app or agree the fare first."),
    ),
    "code": (
        ("Can you write a test for it?", "Write one test that fails on the old code and passes with the fix."),
        ("Is this worth a comment?", "A one-line comment explaining why is worth it here."),
        ("Will that hurt performance?", "Not noticeably for this workload; measure if you're unsure."),
        ("Should I pull this into a function?", "Yes, a small named function is easier to test."),
        ("Would a linter catch this?", "Many would, so turn that rule on in CI."),
        ("Is there a library for this?", "Probably, but the standard library covers this case well enough."),
    ),
    "roleplay": (
        ("*I look around carefully.*", "*Shadows shift at the edge of the light, and something glints nearby.*"),
        ("What do you suggest?", "*A quiet pause.* Caution first; we only get one chance at this."),
        ("*I wait and listen.*", "*For a long moment there's only silence, then a faint scrape.*"),
        ("Can we trust them?", "*A shrug.* Trust is earned, and so far it hasn't been."),
        ("*I check my gear.*", "*Everything is in place, though your hands aren't quite steady.*"),
        ("Let's keep moving.", "*A nod, and you press on together.*"),
    ),
}

HOLDOUT8_OFFTOPIC: tuple[tuple[Turn, Turn, Turn], ...] = (
    (
        (
            "Unrelated, but how long can cooked rice stay in the fridge?",
            "About a day; cool it within an hour of cooking and reheat it only once, until steaming hot.",
        ),
        (
            "Why is rice riskier than pasta?",
            "Bacillus cereus spores survive cooking and make toxins if the rice sits warm.",
        ),
        ("Can I freeze it instead?", "Yes, freeze flat portions in bags and use them within a month."),
    ),
    (
        (
            "Our new hamster runs on its wheel all night and keeps the whole family awake. Is that normal, or is "
            "something wrong with him?",
            "It's normal: hamsters are nocturnal and can run several kilometres a night.",
        ),
        ("Can I move the cage to another room?", "Yes, anywhere quiet that isn't draughty or next to a radiator."),
        ("Is there a quieter wheel?", "Look for a large solid wheel with sealed bearings, sold as silent."),
    ),
    (
        ("What's a birdie in golf?", "A birdie is one stroke under par on a hole."),
        ("And an eagle?", "Two under par, and an albatross is three under."),
        ("What's a bogey then?", "One over par on a hole."),
    ),
    (
        (
            "Why did the Vikings stop raiding England and France?",
            "Kingdoms grew stronger and better defended, and Scandinavia became Christian and more centralised.",
        ),
        ("Did they really wear horned helmets?", "No, that image comes from 19th-century opera costumes."),
        ("How far west did they get?", "To Newfoundland, at L'Anse aux Meadows, around the year 1000."),
    ),
    (
        (
            "How do bats find their way in the dark?",
            "Most use echolocation: they send out high-pitched calls and listen for the echoes.",
        ),
        ("So are they blind?", "No, bats can see, and some fruit bats see very well."),
        ("Can we hear the calls?", "Mostly not, as they're ultrasonic, above the range of human hearing."),
    ),
    (
        (
            "The kitchen sink drains really slowly and I'd rather not pour chemicals down it. Any ideas?",
            "Try a plunger first, then baking soda and vinegar followed by hot water, and clean the trap if needed.",
        ),
        (
            "How do I get the trap off?",
            "Put a bucket underneath and unscrew the two plastic nuts by hand, then rinse it out.",
        ),
        ("It drips a bit now.", "Check the rubber washers sit flat and tighten the nuts a little more."),
    ),
    (
        (
            "Totally different thing: my daughter wants to learn the drums, but we live in a flat with "
            "neighbours below. How do people practise without driving everyone mad?",
            "Practice pads and an electronic kit with mesh heads cut most of the noise, and a rubber mat or a "
            "riser reduces the thumping through the floor.",
        ),
        ("Are electronic kits expensive?", "Entry-level mesh kits start at a few hundred."),
        ("How often should she practise?", "Twenty to thirty minutes most days beats one long weekly session."),
    ),
    (
        (
            "Can I grow new rosemary plants from cuttings?",
            "Yes, take 10 cm non-flowering tips in late spring, strip the lower leaves and push them into gritty "
            "compost.",
        ),
        ("Do I need rooting powder?", "It helps a little, but rosemary roots fine without it."),
        ("How long until they root?", "Usually four to eight weeks; gentle resistance when tugged means roots."),
    ),
)
