"""Seventh held-out split for the topic-shift stress test (``benchmarks/drift.py``).

Written blind on 2026-11-29, without seeing the detector or any result, and without reading the other
blind splits, as a seventh held-out split. Same shape as ``drift_sessions.HOLDOUT``: two scenarios per
domain, six generic follow-ups per domain, and eight casual off-topic threads of three turns each.
"""

from __future__ import annotations

from drift_sessions import Scenario, Turn

HOLDOUT7: tuple[Scenario, ...] = (
    # ------------------------------------------------------------------ negotiation
    Scenario(
        "negotiation",
        "kiln-purchase",
        "You are a level-headed negotiation coach who helps people buy second-hand equipment; answer briefly.",
        (
            (
                "A retired potter two towns over is selling her electric kiln, a 60-litre top-loader with a "
                "digital controller, for $ask. The ad first went up at $list three weeks ago and was lowered "
                "since. Similar used kilns I've found online go for $low to $high. What should I offer?",
                "A price cut after three weeks tells you she wants it gone, so you have room. Open around $offer "
                "and tie the number to concrete facts: its age, the element condition and the cost of moving it.",
            ),
            (
                "I went to look at it yesterday. The elements look a bit worn, she says it was fired about 300 "
                "times, and the lid brick has a small chip. She seemed attached to it and told me stories about "
                "her glazes. How do I bring up the price without offending her?",
                "Thank her for showing it and say you can see it was well looked after, then name the facts: "
                "elements are a wear part and a set costs real money. Make your offer of $offer calmly and let "
                "her respond before adding anything.",
            ),
            (
                "She texted back that she can't go below $counter because she paid a lot for the controller "
                "upgrade two years ago. She also mentioned another person is coming on Saturday. Is that "
                "pressure real, or should I hold my ground?",
                "It may be real or it may be a nudge; you cannot know, so decide your walk-away number now. "
                "A fair answer is to meet her near $mid and offer to collect this week, which beats a maybe "
                "on Saturday.",
            ),
            (
                "She said $mid works only if I take the kiln furniture too, shelves and posts, and pay cash on "
                "pickup. I would need to rent a van and find two friends to lift it, since it weighs about 150 "
                "kilos. Should I accept, or try $final first?",
                "The shelves and posts are worth having, so $mid with the furniture is a good deal. Trying "
                "$final now risks the goodwill you built; accept, confirm the pickup day in writing, and "
                "bring a trolley and straps.",
            ),
        ),
        (
            ("She says the shelves are silicon carbide.", "Those are the good ones, so the deal got better."),
            ("Is $final too cheeky now?", "Yes, at this stage it would likely sour things for little gain."),
            ("Should I ask for a test firing?", "Yes, ask her to run it to a low temperature while you watch."),
            (
                "The thermocouple was replaced last spring.",
                "Good, that is one less part to budget for in the next year.",
            ),
            ("Do I need a receipt?", "A short signed note with the price and date is sensible for cash."),
            ("What if the Saturday buyer offers more?", "Then you agreed on a price first; remind her kindly."),
            ("Van hire is 90 for the day.", "Count that in, but it does not change whether $mid is fair."),
        ),
        {"ask": ("700", "800", "900", "950", "1000", "1100")},
    ),
    Scenario(
        "negotiation",
        "band-gig-fee",
        "You are a pragmatic coach for freelance musicians negotiating fees; keep answers to two or three sentences.",
        (
            (
                "I run a four-piece soul and funk covers band, and a software company asked us to play a three-hour "
                "set at their summer party on a rooftop terrace, and I quoted $ask, which includes our own PA. "
                "Our published rate card says $list for this kind of event. The event planner replied offering "
                "$offer. How should I respond?",
                "Thank her and restate what $ask includes: four players, three hours, the PA and setup time. "
                "Ask what her budget is based on, because planners often have a fixed line they cannot exceed.",
            ),
            (
                "She said their budget line for entertainment is tight, and that other bands in town charge "
                "$low to $high. That's roughly true, though most of those don't bring their own sound system. "
                "I don't want to lose the gig, but I also can't underpay the drummer and bassist.",
                "Separate the music from the extras: if the venue has house sound, you can drop the PA and "
                "come down to about $counter. If they need your PA, explain that it is the cost of gear and "
                "a sound tech, not a markup.",
            ),
            (
                "She liked that and asked if we could do $mid with our PA if we cut the set to two hours and "
                "thirty minutes. The company also wants a short acoustic duo during the welcome drinks before "
                "the main set. Is that fair?",
                "A shorter set at $mid is workable, but the welcome duo is extra work, so price it separately "
                "or trade it for something. Offer the duo as included only if they cover parking and a meal "
                "for the band.",
            ),
            (
                "She agreed to parking, dinner and a 50 percent deposit, but now says the final number has to "
                "be $final because the finance team cut another line. We'd still make a small profit, but less "
                "than planned. Should we take it or walk away?",
                "If $final still pays everyone properly, take it, but trim the scope to match: drop the welcome "
                "duo or shorten it. Get the fee, scope and deposit in a signed agreement before you block the date.",
            ),
        ),
        (
            ("The drummer is fine with it.", "Good, then the band is aligned and you can confirm."),
            ("Should the deposit be non-refundable?", "Yes, state that it is kept if they cancel within 30 days."),
            ("What if it rains on the rooftop?", "Add a clause that they provide cover or an indoor room."),
            ("They want a song list in advance.", "Send one with a note that you adapt to the crowd on the night."),
            ("Can we ask for a bigger deposit?", "You can ask for 60 percent, but 50 is standard for corporate gigs."),
            ("Can we sell our CDs there?", "Ask first; most corporate events allow a small table by the stage."),
            ("Who pays for the extension cables?", "That is your gear, so it is part of your fee."),
        ),
        {"ask": ("1400", "1600", "1800", "2000", "2400")},
    ),
    # ------------------------------------------------------------------ medical
    Scenario(
        "medical",
        "winter-nosebleeds",
        "You are a careful medical intake assistant; give general guidance and say clearly when to see a doctor.",
        (
            (
                "I'm 46 and for the past three weeks I've been getting nosebleeds from my left nostril, two or "
                "three times a week, each lasting about ten minutes. Our flat has the radiators on high since it "
                "got cold, and the air feels very dry. I also take low-dose aspirin that my cardiologist prescribed.",
                "Dry indoor air is a very common cause, because the lining at the front of the nose cracks and "
                "bleeds easily. Aspirin can make each bleed last longer, but do not stop it without talking to "
                "your cardiologist first.",
            ),
            (
                "What is the right way to stop one when it starts? I've been tilting my head back and holding a "
                "tissue on the bridge of my nose, which seems to take forever. Sometimes I taste blood in my throat.",
                "Lean forward, not back, and pinch the soft part of the nose just below the bony bridge for ten "
                "to fifteen minutes without letting go to check. Tilting back sends blood down the throat, which "
                "can make you cough or feel sick.",
            ),
            (
                "My wife made me check my blood pressure on her home monitor, and it read 152 over 94 twice "
                "this week. I normally don't know my numbers. Could that be causing the bleeds?",
                "Raised blood pressure does not usually start nosebleeds, but it can make them harder to stop. "
                "Readings like those deserve a GP appointment in the next week or two to confirm them properly.",
            ),
            (
                "The GP can only see me in ten days. In the meantime, is there anything I can do at home to "
                "prevent them, and at what point should I go to the emergency department instead of waiting?",
                "A humidifier, a saline nasal spray and a thin layer of petroleum jelly inside the nostril at "
                "night help keep the lining moist. Go to emergency care if a bleed lasts more than twenty minutes "
                "despite proper pressure, is very heavy, or you feel faint or short of breath.",
            ),
        ),
        (
            ("Can I still blow my nose?", "Gently, one side at a time, and not for a day after a bleed."),
            ("It happened again at work today.", "Lean forward and pinch for fifteen minutes, then rest quietly."),
            ("The humidifier says 28 percent.", "That is dry; aim for around 40 to 50 percent indoors."),
            ("Should I avoid hot showers?", "Very hot steam right after a bleed can restart it, so keep them warm."),
            (
                "What does cauterising involve?",
                "A doctor seals the small vessel with a chemical stick in a few seconds.",
            ),
            ("My son gets them too.", "Children often do with dry air; the same pinching method works for him."),
            ("Is a crust inside normal?", "Yes, leave it alone; picking it off usually starts another bleed."),
        ),
    ),
    Scenario(
        "medical",
        "jaw-clicking",
        "You are a calm health assistant doing symptom intake; be practical and say when to see a dentist or doctor.",
        (
            (
                "For about a month my right jaw clicks when I open my mouth wide, and it aches when I wake up. "
                "My partner says I grind my teeth at night, which I never noticed. Chewing crusty bread or steak "
                "now hurts. I'm 31 and work has been very stressful lately.",
                "This sounds like a jaw joint and muscle problem, often linked to night grinding and stress. "
                "For a couple of weeks, eat softer food, avoid gum and wide yawns, and use a warm compress on "
                "the sore side; $med can help short term.",
            ),
            (
                "A friend suggested a mouth guard. The pharmacy sells boil-and-bite ones for about 20, while my "
                "dentist quoted several hundred for a custom night guard. Is the cheap one good enough to start?",
                "A pharmacy guard is fine as a short trial, but soft ones can sometimes make some people clench "
                "more. If it helps, a dentist-made hard splint is more comfortable and lasts years, so book the "
                "dental check anyway.",
            ),
            (
                "I also get dull headaches at my temples most mornings, and my right ear feels full, like after a "
                "flight, though I don't have an ear infection. Could that all be connected to the jaw?",
                "Yes, the chewing muscles sit over the temples and the joint is right in front of the ear, so "
                "temple headaches and ear fullness are common with this problem. Mention them to the dentist, and "
                "see a GP if you get hearing loss, discharge or fever.",
            ),
            (
                "This morning my jaw got stuck for a minute and I could only open it about two fingers wide, then "
                "it popped and opened normally. It scared me. Is that an emergency?",
                "A brief catch that releases on its own is not an emergency, but it means the disc in the joint "
                "is slipping, so get seen within a few weeks. If the jaw locks and does not release, or you "
                "cannot close your mouth, go to urgent care that day.",
            ),
        ),
        (
            ("Are there jaw exercises I can do?", "Yes, slow controlled opening in front of a mirror, twice a day."),
            (
                "Coffee makes me clench more, I think.",
                "Caffeine can raise muscle tension, so cut back in the afternoon.",
            ),
            ("Should I stop chewing on the right?", "Chew on both sides with small bites rather than avoiding one."),
            ("Ice or heat?", "Heat for muscle ache, ice briefly if the joint itself feels swollen."),
            ("It clicked but didn't hurt today.", "A painless click alone is common and usually not a worry."),
            ("Would a physiotherapist help?", "Yes, some physios specialise in jaw problems and it often helps."),
            ("My dentist appointment is in three weeks.", "That is fine as long as the jaw does not lock."),
        ),
    ),
    # ------------------------------------------------------------------ math
    Scenario(
        "math",
        "linear-inequalities",
        "You are a friendly math tutor for a fifteen-year-old; explain each step in a sentence or two.",
        (
            (
                "Our homework says: a climbing gym charges a 40 joining fee and then 18 per month. Priya has "
                "saved 250. What is the largest number of whole months she can afford? I wrote 40 + 18m = 250 "
                "but the teacher circled the equals sign.",
                "The teacher wants an inequality, because Priya can spend up to 250, not exactly 250: "
                "40 + 18m ≤ 250. Subtract 40 to get 18m ≤ 210, divide by 18 to get m ≤ 11.67, so she can "
                "afford 11 whole months.",
            ),
            (
                "Next one: solve 5 - 3x > 17. I got x > -4, but the answer key says x < -4. Why does the "
                "sign flip? Nobody explained that in class.",
                "Subtract 5 to get -3x > 12, then divide by -3. Dividing or multiplying both sides by a negative "
                "number reverses the order of the numbers, so the sign flips: x < -4. Check with x = -5: "
                "5 + 15 = 20, which is bigger than 17.",
            ),
            (
                "Then there's a double one: -2 ≤ 2x + 4 < 10. Do I have to split it into two separate "
                "inequalities, or can I do it all at once? And how do I draw it on the number line?",
                "You can do it all at once: subtract 4 from all three parts to get -6 ≤ 2x < 6, then divide by "
                "2 to get -3 ≤ x < 3. On the number line, put a filled dot at -3, an open dot at 3, and shade "
                "between them.",
            ),
            (
                "The last question has an absolute value: |x - 5| < 3. I don't really know what the bars mean "
                "here. Is it the same kind of thing as the double inequality?",
                "Yes: |x - 5| < 3 means x is less than 3 away from 5, so -3 < x - 5 < 3. Add 5 to every part "
                "to get 2 < x < 8, an open interval with open dots at 2 and 8.",
            ),
        ),
        (
            ("I got $guess for the gym one.", "Not quite; 210 divided by 18 is 11.67, so 11 whole months."),
            ("Why not round up to 12?", "Twelve months costs 256, which is more than she has."),
            ("What about |x - 5| > 3?", "Then x is more than 3 away from 5: x < 2 or x > 8."),
            ("Is the dot at 8 filled?", "No, open, because 8 itself is not less than 8."),
            ("Does the sign flip when I add a negative?", "No, only multiplying or dividing by a negative flips it."),
            (
                "How do I write it in interval notation?",
                "The double one is [-3, 3): a bracket for filled, round for open.",
            ),
            ("Can I check with zero?", "Yes, zero is a quick test point whenever it is in the range."),
        ),
        {"guess": ("12", "11.67", "10")},
    ),
    Scenario(
        "math",
        "counting-arrangements",
        "You are a patient tutor helping a student with counting and combinatorics; keep explanations short.",
        (
            (
                "I'm stuck on counting problems. The first one: a bike lock has four dials with digits 0 to 9. "
                "How many codes are possible if no digit can be repeated? I said 10 × 10 × 10 × 10 but that's "
                "marked wrong.",
                "Ten to the fourth counts codes where repeats are allowed. Without repeats, the first dial has "
                "10 choices, the second 9, then 8, then 7, so 10 × 9 × 8 × 7 = 5040 codes.",
            ),
            (
                "Okay. Now: a club of 12 people must choose a committee of 3. I did 12 × 11 × 10 = 1320, "
                "but the answer is 220. Where did the extra come from?",
                "12 × 11 × 10 counts ordered choices, as if there were a first, second and third seat. A "
                "committee has no order, and each group of 3 was counted 3! = 6 times, so 1320 / 6 = 220. "
                "That is 12 choose 3.",
            ),
            (
                "What if the committee needs a chair, a secretary and a treasurer, so the roles are different? "
                "Is that back to 1320, or something else?",
                "Back to 1320, because now the order matters: swapping who is chair and who is treasurer gives a "
                "different committee. Roles mean permutations, plain groups mean combinations.",
            ),
            (
                "Last one: how many different ways can you arrange the letters of the word LETTER? I tried 6! = "
                "720 but I think the repeated letters mess it up somehow.",
                "Right, the two E's and two T's can swap without making a new word. Divide by 2! for the E's and "
                "2! for the T's: 720 / (2 × 2) = 180 arrangements.",
            ),
        ),
        (
            ("I got $guess for the lock.", "Not quite; without repeats it is 10 × 9 × 8 × 7 = 5040."),
            ("What does 3! mean again?", "Three factorial, 3 × 2 × 1, which is 6."),
            ("And for the word BUBBLE?", "Six letters with three B's, so 720 / 6 = 120."),
            ("Why divide and not subtract?", "Each word was counted several times over, so you divide out the copies."),
            ("Is 12 choose 9 also 220?", "Yes, choosing 9 to keep is the same as choosing 3 to leave out."),
            ("How do I spot order mattering?", "Ask whether swapping two people gives a different result."),
            ("What if repeats are allowed on the lock?", "Then it is 10 to the fourth, 10000 codes."),
        ),
        {"guess": ("10000", "210", "24")},
    ),
    # ------------------------------------------------------------------ trip
    Scenario(
        "trip",
        "patagonia-w-trek",
        "You are a seasoned trekking guide and trip planner; give concrete, compact advice.",
        (
            (
                "My sister and I want to hike the W trek in Torres del Paine in late February, five days, "
                "starting from Puerto Natales. We're fit but have never done a multi-day trek. Should we book "
                "refugios or carry a tent and cook ourselves?",
                "Late February is still busy, so book whatever you choose now, since campsites and refugios need "
                "reservations. For first-timers, refugio beds with dinner and breakfast keep your packs light; "
                "a rented tent on a platform is a cheaper middle ground.",
            ),
            (
                "Which direction is better, east to west or west to east? I read the wind can be brutal and "
                "that the base of the towers is best at sunrise. We'd like to do the towers on a clear day.",
                "Many people walk east to west and do the towers first, while legs are fresh, but that gambles "
                "the viewpoint on day one's weather. Going west to east leaves the towers for last, giving you a "
                "couple of days to watch the forecast.",
            ),
            (
                "How do we get from Puerto Natales to the start of the trail, and is there a catamaran we "
                "need to take? I saw something about Pudeto and Paine Grande but I'm confused about the order.",
                "Morning buses run from Puerto Natales to the park entrance at Laguna Amarga and on to Pudeto. "
                "If you start in the west, take the catamaran from Pudeto across Lake Pehoé to Paine Grande; "
                "buy bus tickets a day ahead.",
            ),
            (
                "What should we pack for the weather, and do we need to carry cash or can we pay by card in "
                "the refugios? We also want to know how heavy our packs will roughly be.",
                "Pack a proper waterproof shell, warm layers, a hat, gloves and trekking poles, since the wind "
                "and sudden rain are the main challenge. Bring some Chilean pesos for snacks and buses, though "
                "refugios usually take cards; aim for packs under 10 kilos with refugios.",
            ),
        ),
        (
            ("What about kayaking near Grey glacier?", "It is worth it if the wind is calm; book it at the refugio."),
            ("Is the French Valley lookout hard?", "It is steep in places but short; go early before the wind rises."),
            ("Do we need a park ticket online?", "Yes, buy the entrance ticket online before you arrive."),
            ("And after the trek?", "Rest a night in Puerto Natales before the bus to El Calafate."),
            ("Can we refill water from streams?", "Usually yes in the park, though a filter is a sensible backup."),
            ("Are trekking poles allowed on the bus?", "Yes, just strap them to your pack."),
            ("My sister has weak knees.", "Poles and a slower descent from the towers will help her a lot."),
            ("Is there phone signal?", "Only patchy near some refugios, so download offline maps."),
        ),
    ),
    Scenario(
        "trip",
        "baltic-capitals-bus",
        "You are a practical travel planner for budget trips in Europe; suggest concrete routes and times.",
        (
            (
                "I have nine days in early June and want to see Tallinn, Riga and Vilnius by bus, flying into "
                "Tallinn and out of Vilnius. I like old towns, markets and some nature, not nightlife. How would "
                "you split the days?",
                "Give each capital about three nights: Tallinn, then Riga, then Vilnius, since the buses between "
                "them take four to five hours. Use one day in each stretch for a day trip so it is not only "
                "old towns.",
            ),
            (
                "Which day trip from Tallinn would you pick: Lahemaa national park or the ferry to Helsinki? I "
                "only have one free day there and I'm not sure I want a second capital on the same trip.",
                "Pick Lahemaa, with its bog boardwalks, manor houses and fishing villages on the coast; it fits "
                "your nature wish. Without a car, a small guided tour is the easiest way, because public buses "
                "there are sparse.",
            ),
            (
                "In Riga I read about the Central Market in old Zeppelin hangars and the Art Nouveau district. "
                "Can I fit in Sigulda too, or is that too much for three nights?",
                "It fits: spend one day on the market and the Art Nouveau streets around Alberta iela, and take "
                "the train to Sigulda the next day for the Gauja valley, the castle ruins and the cable car. "
                "The train takes about 75 minutes, so leave before nine to have a full day.",
            ),
            (
                "For Vilnius, I want to see Trakai castle and maybe Užupis. Is it better to go to Trakai by "
                "train or bus, and how should I get to the airport on the last day?",
                "Trains to Trakai take about 35 minutes and run often; go in the morning before the tour groups. "
                "On the last day, the airport is close, and the train or a city bus gets you there in about 15 "
                "to 20 minutes.",
            ),
        ),
        (
            ("Which bus company runs Tallinn to Riga?", "Lux Express and Ecolines both run it several times a day."),
            ("Is the Hill of Crosses reachable?", "Yes, as a stop between Riga and Vilnius with a tour or a car."),
            ("Do I need euros everywhere?", "Yes, all three countries use the euro."),
            ("What about Kadriorg palace?", "It is a nice half day in Tallinn, a short tram ride from the old town."),
            ("Is June too crowded?", "It is busy but fine; book the first night in each city early."),
            ("Can I buy bus tickets on board?", "Sometimes, but online is cheaper and guarantees a seat."),
            ("And if it rains in Lahemaa?", "The bog boardwalk is still pleasant in light rain with a jacket."),
        ),
    ),
    # ------------------------------------------------------------------ code
    Scenario(
        "code",
        "python-decimal-invoice",
        "You are a senior Python developer reviewing code for a small billing team; be precise and friendly.",
        (
            (
                "Can you review our invoice helper? def total(items): return round(sum(i['price'] * i['qty'] "
                "for i in items), 2). A customer complained that 3 items at 19.99 plus tax came out one cent off "
                "the PDF from our old system. Is something wrong here?",
                "Yes: floats are binary, so values like 19.99 cannot be stored exactly and the errors add up; "
                "even round(2.675, 2) gives 2.67. For money use decimal.Decimal built from strings, for example "
                "Decimal('19.99'), and round with quantize.",
            ),
            (
                "Okay, so I rewrote it as sum(Decimal(str(i['price'])) * i['qty'] for i in items) and then "
                "total.quantize(Decimal('0.01')). The price still comes from a float8 column in PostgreSQL. "
                "Should we change the database too?",
                "Yes, otherwise the error already happened before Python sees the value. Change the column to "
                "numeric(12, 2), or store integer cents, and psycopg will hand you Decimal values directly.",
            ),
            (
                "Our VAT is 21 percent. The accountant says totals differ by a cent on large orders depending on "
                "whether we round tax per line or on the whole invoice. Which is right?",
                "Both can be legal; it depends on your country's rules and what your old system did. Pick one, "
                "write it down, and use quantize(Decimal('0.01'), rounding=ROUND_HALF_UP) in exactly one place "
                "so every document agrees.",
            ),
            (
                "Now the API endpoint crashes with TypeError: Object of type Decimal is not JSON serializable "
                "when we call json.dumps(invoice). What's the cleanest fix?",
                "Send money as strings, for example '71.72', so no client turns it back into a float. Either "
                "convert explicitly in your serializer or pass default=str to json.dumps for a quick fix.",
            ),
        ),
        (
            ("Is ROUND_HALF_EVEN ever better?", "It is used in some banking contexts because it avoids upward bias."),
            ("Our tests use assertEqual on floats.", "Compare Decimal values or integer cents instead of floats."),
            ("Does Decimal slow things down?", "A little, but for invoice volumes it will not matter."),
            (
                "What about exchange rates in rates.py?",
                "Keep rates as Decimal too, with more places, and round at the end.",
            ),
            ("The frontend uses parseFloat on it.", "Only format it for display; never do arithmetic with it there."),
            ("Should I set the context precision?", "The default of 28 digits is plenty for money."),
            ("And discounts given as percentages?", "Apply them as Decimal and round once per line with quantize."),
        ),
    ),
    Scenario(
        "code",
        "csharp-httpclient",
        "You are an experienced .NET engineer doing a careful, friendly code review.",
        (
            (
                "We have this in our exchange-rate service: public async Task<string> GetRate(string code) { "
                "using (var client = new HttpClient()) { return await client.GetStringAsync(baseUrl + code); } }. "
                "Under load we get SocketException: Only one usage of each socket address is normally permitted. "
                "What's going on?",
                "Each disposed HttpClient leaves its socket in TIME_WAIT for a while, so under load you run out "
                "of ports. Create one HttpClient and reuse it for the life of the app, or use IHttpClientFactory "
                "to manage them.",
            ),
            (
                "A teammate says that if we make it static readonly, it won't pick up DNS changes, and our rate "
                "provider moves behind a load balancer now and then. Is that a real concern?",
                "Yes, a long-lived client keeps connections to old addresses. Give it a SocketsHttpHandler with "
                "PooledConnectionLifetime = TimeSpan.FromMinutes(2), or let IHttpClientFactory rotate handlers "
                "for you.",
            ),
            (
                'Also, the controller calls it like var rate = GetRate("EUR").Result; because the method it '
                "sits in isn't async. Sometimes requests just hang until they time out. Could that be related?",
                "Very likely: blocking on .Result ties up thread-pool threads, and under load the pool starves "
                "and requests stall. Make the controller action async and await GetRate all the way up.",
            ),
            (
                "Last thing: the provider sometimes never answers, and the default timeout is 100 seconds. "
                "How should we handle timeouts and retries without hammering them?",
                "Pass a CancellationToken with a per-call timeout of a few seconds, and retry only idempotent "
                "GETs with exponential backoff and jitter, for example with Polly. Cache the last good rate so a "
                "slow provider does not break checkout.",
            ),
        ),
        (
            ("Where do we register the factory?", "In Program.cs with builder.Services.AddHttpClient."),
            ("Is a typed client better?", "Yes, a typed RatesClient keeps the base URL and headers in one place."),
            ("How many retries?", "Two or three with backoff is usually enough."),
            ("And what about ConfigureAwait(false)?", "Not needed in ASP.NET Core, but harmless in library code."),
            ("The cache is a static Dictionary.", "Use IMemoryCache or a ConcurrentDictionary to avoid races."),
            ("Should we log each retry?", "Log at warning level with the attempt number and status code."),
            ("What about the 429 responses?", "Respect the Retry-After header before trying again."),
        ),
    ),
    # ------------------------------------------------------------------ roleplay
    Scenario(
        "roleplay",
        "cartographer-guild",
        "You are Master Orrin Vell, an old cartographer in a fantasy guild city; the user is your apprentice, "
        "so stay in character.",
        (
            (
                "*I burst into the workshop holding a rolled map.* Master Vell, the survey of the Eastern Reach "
                "we finished last week has changed overnight! There's a river drawn across the valley that "
                "wasn't there, in ink I didn't use. What does it mean?",
                "*Orrin sets down his quill and unrolls the map under the lamp.* Ink that is not ours, in a "
                "hand that is not ours. *He sniffs the parchment.* Cuttlefish ink with a trace of silver; someone "
                "wants this river to be real, apprentice.",
            ),
            (
                "*I point at the new river's source, high in the hills.* It starts near the old Sunward "
                "monastery ruins. The trade council meets tomorrow to decide the new road, and they'll use our "
                "map to choose the route. Could someone be trying to sway them?",
                "*He taps the ruins with a crooked finger.* A river means no road through that valley, and the "
                "road then bends past the quarry lords' land. *He narrows his eyes.* Fetch the copy from the "
                "guild vault; if it has changed too, this is no prank.",
            ),
            (
                "*I return from the vault, out of breath.* The vault copy is unchanged, but the seal on the "
                "cabinet was broken and resealed with slightly darker wax. The vault keeper says only guild "
                "masters have keys. What now?",
                "*Orrin is quiet for a long moment.* Then the thief has a master's key, or a master's trust. "
                "*He pulls a small brass lens from his coat.* Tonight we will look at the map under moonlight; "
                "silver ink shows what fresh ink hides.",
            ),
            (
                "*That night, under the moon, faint silver lines appear beside the river: a tiny signature, a "
                "coiled serpent.* Master, I've seen that mark before, on the rings worn by Master Hesk's clerks. "
                "Do we confront him?",
                "*Orrin rolls the map slowly.* Not yet. A serpent on a clerk's ring is a rumour, not proof. "
                "*He hands you the lens.* Tomorrow, before the council, we ride to the valley and see with our "
                "own eyes whether any river runs there.",
            ),
        ),
        (
            ("*I saddle the horses.*", "*Orrin pulls on his riding cloak.* Pack the survey chain and a lantern."),
            (
                "The valley is completely dry.",
                "*He smiles grimly.* Then we have our proof; sketch it exactly as it is.",
            ),
            ("Should we warn the council?", "*He shakes his head.* We show them, apprentice, we do not warn them."),
            ("A clerk is following us.", "*Orrin doesn't turn.* Let him follow; an honest map fears no witness."),
            ("What if Hesk denies it?", "*He taps the lens.* Silver ink does not lie, even if its author does."),
            (
                "*I find hoofprints near the ruins.*",
                "*He kneels.* Shod horses, recent; someone surveyed here before us.",
            ),
            ("Do I sign the new map too?", "*He nods.* Sign it, and date it; that is your oath as a mapmaker."),
        ),
    ),
    Scenario(
        "roleplay",
        "carnival-disappearance",
        "You are Sheriff Hattie Boone, a dry-witted small-town sheriff in 1953; the user is your deputy, "
        "so stay in character.",
        (
            (
                "*I knock on the office door, hat in hand.* Sheriff, the traveling carnival at the fairground "
                "says their fortune teller, Madame Zora, vanished last night between shows. Her tent was "
                "zipped from the inside and her crystal ball is gone. The owner wants us out there right away.",
                "*Hattie finishes her coffee in one swallow and grabs her keys.* A fortune teller who didn't see "
                "that coming. *She pins on her star.* Bring the camera, Deputy; carnival folk pack up fast when "
                "the law starts asking questions.",
            ),
            (
                "*At the fairground, the owner, Mr Delacroix, says Zora argued with the strongman, Big Otto, "
                "the night before. Otto says he was fixing the carousel motor until two in the morning.* Who "
                "should we talk to first?",
                "*Hattie squints at the silent carousel.* Otto's the obvious one, so he's the one everybody "
                "wants us to look at. *She tips her hat back.* Let's ask the carousel kid who held the "
                "flashlight for him first.",
            ),
            (
                "*The kid says Otto never came to fix the motor; he was alone with the flashlight till midnight. "
                "Then I find a train ticket to Kansas City in Zora's trunk, bought two weeks ago under the name "
                "Rose Mallory.* Sheriff, did she plan to leave?",
                "*Hattie turns the ticket in the light.* Bought two weeks back, so she planned something. "
                "*She glances at the zipped tent.* But a woman who plans to leave takes her trunk, Deputy. "
                "Somebody left in a hurry, or somebody made it look like she did.",
            ),
            (
                "*Behind the tent I find the crystal ball smashed in the grass and a smear of green greasepaint "
                "on the canvas, the kind the clowns use.* Otto doesn't wear greasepaint. Should we round up the "
                "clowns?",
                "*Hattie crouches by the glass.* Round up, no. Ask nicely, yes, and watch which one asks about "
                "the ball before we mention it. *She stands and dusts her knees.* And wire Kansas City about "
                "Rose Mallory.",
            ),
        ),
        (
            ("Kansas City wired back.", "*Hattie takes the paper.* Read it to me slow, Deputy."),
            ("One clown left before dawn.", "*She reaches for her hat.* Then we drive to the train depot."),
            (
                "*I show her a photo of Zora.*",
                "*Hattie studies it.* Same face as the Mallory wanted poster, sure as rain.",
            ),
            ("Otto wants to talk now.", "*She sits back.* Let him sweat ten minutes, then bring him in."),
            ("Should I call the state police?", "*Hattie snorts.* Not till I know what I'd be telling them."),
            ("The ticket booth was open late.", "*Her eyes narrow.* Then find out who sold tickets after midnight."),
            ("*I find a wig in the trunk.*", "*She whistles.* Red hair, Deputy; our fortune teller had a second face."),
        ),
    ),
)

HOLDOUT7_FOLLOWUPS: dict[str, tuple[Turn, ...]] = {
    "negotiation": (
        ("Do I mention the other offer?", "Only if it is real, and only once, without exaggerating it."),
        ("Should I put it in writing?", "Yes, a short message confirming the agreed terms avoids confusion later."),
        ("They haven't replied in two days.", "Send one friendly nudge; silence often just means they are busy."),
        ("Is meeting halfway a good idea?", "Only if the halfway point is a number you are happy with."),
        ("What if they get annoyed?", "Stay polite and restate your reasons; annoyance usually passes."),
        ("Can I ask for extras instead?", "Yes, extras are often easier for the other side to give than cash."),
    ),
    "medical": (
        ("Should I take something for it?", "A standard painkiller at the usual dose is fine for a few days."),
        ("Can I still exercise?", "Light activity is fine; stop anything that makes it clearly worse."),
        ("It's a bit better today.", "Good, keep doing the same things for a few more days."),
        ("Could it be something serious?", "It is unlikely, but see a doctor if new or severe symptoms appear."),
        ("Do I need any tests?", "Probably not at first; a doctor will decide after examining you."),
        ("Is it okay to drink alcohol?", "Better to keep it minimal until the symptoms settle."),
    ),
    "math": (
        ("Can you show that step again?", "Sure, let's go through it slowly, one line at a time."),
        ("How would I check my answer?", "Plug your result back into the original problem and see if it holds."),
        ("Is there a shortcut?", "Sometimes, but learn the long way first so the shortcut makes sense."),
        ("Will this be on the test?", "Very likely, since it builds on everything in this unit."),
        ("I still don't get it.", "That's fine; let's try a smaller example with easier numbers."),
        ("What's a common mistake here?", "Dropping a sign or a factor halfway through is the usual one."),
    ),
    "trip": (
        ("Do I need to book ahead?", "For the popular spots in high season, yes, a few weeks ahead."),
        ("Is it safe to go alone?", "Generally yes, with the usual care at night and around transport hubs."),
        ("What's the weather like then?", "Mostly mild, but pack a rain layer for sudden showers."),
        ("How much should I budget per day?", "Plan a daily amount for food and transport, plus a small buffer."),
        ("Is travel insurance worth it?", "Yes, especially if you book non-refundable transport or activities."),
        ("Any local food I must try?", "Ask at a market; the regional specialities are usually the best value."),
    ),
    "code": (
        ("Would you merge it like this?", "After the fixes above, yes, with a test covering the bug."),
        ("Can you write a test for it?", "Sure, one test for the normal case and one for the edge case."),
        ("Is this a breaking change?", "Only for callers relying on the old behaviour; note it in the changelog."),
        ("Should it go in a separate PR?", "Yes, small focused PRs are easier to review and revert."),
        ("What would you name it?", "Pick a name that says what it returns, not how it works."),
        ("Does this affect performance?", "Not noticeably at this scale; measure before optimising."),
    ),
    "roleplay": (
        ("What do we do now?", "*A pause, then a decisive nod.* We move before they do."),
        ("*I keep watch by the door.*", "*A quiet nod of approval.* Good. Tell me if anyone comes."),
        ("Is it safe here?", "*A glance around.* Safe enough for now, but don't get comfortable."),
        ("Who else knows about this?", "*A low voice.* Fewer people than you'd think, and that worries me."),
        ("*I hand over what I found.*", "*It is examined carefully.* This changes things."),
        ("Should we wait until morning?", "*A shake of the head.* Morning is too late."),
    ),
}

HOLDOUT7_OFFTOPIC: tuple[tuple[Turn, Turn, Turn], ...] = (
    (
        (
            "Unrelated, but my basil plants keep bolting and flowering on the windowsill. How do I stop that?",
            "Pinch off the flower buds as soon as you see them and harvest from the top, just above a pair "
            "of leaves, so the plant grows bushier instead of going to seed.",
        ),
        ("Does it need more water?", "Keep the soil evenly moist but never soggy; drought stress makes it bolt."),
        ("Are the leaves ruined now?", "Flowering makes them a bit more bitter, but they're still usable."),
    ),
    (
        (
            "Why do onions make you cry?",
            "Cutting an onion releases an enzyme that turns its sulfur compounds into a gas that irritates "
            "your eyes, and your tear glands respond.",
        ),
        ("Does chilling it help?", "Yes, a cold onion releases less of the gas."),
        ("What about a sharp knife?", "A sharp knife crushes fewer cells, so it helps too."),
    ),
    (
        (
            "Random thing, my nephew started water polo. How many players are in the pool for each team?",
            "Seven per team in the water: six field players and a goalkeeper, with substitutes on the bench.",
        ),
        ("Are they allowed to touch the bottom?", "No, field players must tread water and cannot stand."),
        ("How long is a match?", "Four quarters of eight minutes of playing time in most competitions."),
    ),
    (
        (
            "Who was Ada Lovelace? My daughter has to do a school presentation on her next week.",
            "She was a 19th-century English mathematician who worked with Charles Babbage on his Analytical "
            "Engine and wrote what is often called the first published computer program.",
        ),
        ("Was she related to Byron?", "Yes, she was the daughter of the poet Lord Byron."),
        ("What's a good fun fact?", "She imagined machines might one day compose music."),
    ),
    (
        (
            "Our smoke alarm keeps chirping every minute, and it always seems to start at 3 a.m. What's "
            "going on with it?",
            "A single chirp every minute usually means a low battery; batteries lose voltage when the house "
            "cools at night, which is why it starts then.",
        ),
        ("I changed the battery and it still chirps.", "Hold the test button for 15 seconds to reset it."),
        ("How old can these alarms be?", "Replace the whole unit after about ten years."),
    ),
    (
        (
            "Quick music question: why do minor keys sound sad?",
            "Mostly the lowered third, which sits closer to the root, plus how we learned the sound culturally.",
        ),
        ("Is that true everywhere?", "No, some musical traditions use minor-like scales for joyful music."),
        ("Which key is the saddest?", "There isn't one, though D minor has a gloomy reputation."),
    ),
    (
        (
            "Totally off topic: our rabbit has started chewing the skirting boards in the living room. How "
            "do we get her to stop?",
            "Rabbits need to chew constantly, so give her plenty of hay, willow sticks and cardboard, and "
            "block the skirting with protectors or a pen.",
        ),
        ("Is the paint dangerous for her?", "Old paint can contain lead, so stop her chewing it and ask a vet."),
        ("Would a second rabbit help?", "Often, since bored single rabbits chew more, but bond them slowly."),
    ),
    (
        (
            "How do I get candle wax out of a linen tablecloth?",
            "Let it harden, scrape off what you can, then put paper towels on both sides and press with a "
            "warm iron so the paper soaks up the wax.",
        ),
        ("There's a red stain left.", "Dab it with rubbing alcohol before washing to lift the dye."),
        ("Can I put it in the dryer?", "Not until the stain is gone, or the heat will set it."),
    ),
)
