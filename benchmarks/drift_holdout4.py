"""A fourth held-out split for the topic-shift stress test (``holdout4``).

Written blind on 2026-11-29, without seeing the detector, any result, or the other blind splits,
as a fourth held-out split: two new scenarios per domain (``HOLDOUT4``), six new generic follow-ups
per domain (``HOLDOUT4_FOLLOWUPS``) and eight new casual off-topic threads (``HOLDOUT4_OFFTOPIC``).
Text uses ``string.Template`` slots (``$ask``, ``$mid``, custom ``slots``), filled per session.
"""

from __future__ import annotations

from drift_sessions import Scenario, Turn

HOLDOUT4: tuple[Scenario, ...] = (
    # ----------------------------------------------------------------------------------------
    # Negotiation
    # ----------------------------------------------------------------------------------------
    Scenario(
        "negotiation",
        "candle-wholesale",
        "You are a pragmatic small-business advisor who helps makers price and negotiate wholesale deals.",
        (
            (
                "I make soy candles at home and sell them at weekend markets for 22 each. A gift shop called "
                "$shop wants 120 candles for their holiday window and asked for a wholesale quote. My materials "
                "and jars come to about 6 per candle, and I was thinking of quoting $ask for the whole order. "
                "Is that a sensible starting number?",
                "Wholesale usually sits near half of retail, so $ask for 120 candles is in a normal range and "
                "leaves you a margin over materials. Quote it with a clear lead time and a deposit, and mention "
                "that it includes packaging so they compare like with like.",
            ),
            (
                "The owner wrote back that she loves the scents but her budget is $offer, and that other makers "
                "give her free shipping plus a display stand. I can deliver by car since the shop is forty "
                "minutes away. A stand would cost me maybe 30 to build. How do I answer without caving?",
                "Thank her, restate the value, and trade rather than simply drop the price: offer to deliver in "
                "person and include the stand if she meets you at $counter. That shows flexibility while "
                "keeping most of your margin intact.",
            ),
            (
                "She says $counter is still a stretch this close to the season, but she would commit to a "
                "reorder in spring if the candles sell well. I have no idea whether she'll actually reorder. "
                "Should a promise of future business change my price now?",
                "A vague promise is worth little, so don't pay for it up front. You can offer $mid now and "
                "write down that a spring reorder of similar size gets the same rate, which rewards her only if "
                "the reorder really happens.",
            ),
            (
                "We're close. She proposed $final if I accept payment thirty days after delivery instead of a "
                "deposit. I'd have to buy all the wax and jars in advance, roughly 720 out of my own pocket, "
                "and I've never invoiced a shop before. What should I watch out for?",
                "Net-thirty is common in retail but it puts the cash risk on you, so ask for at least a third "
                "as a deposit to cover materials. Send a simple written invoice with quantities, due date and "
                "a late fee, and keep the signed delivery note.",
            ),
        ),
        (
            ("She agreed to a 30 percent deposit.", "Good, that covers your materials, so the main risk is gone."),
            ("Do I charge sales tax on wholesale?", "Usually not if she gives you a resale certificate; ask for it."),
            (
                "What if a few jars crack in transit?",
                "Pack with dividers and agree that breakage reported on delivery gets replaced.",
            ),
            (
                "Is $final for all of them worse than market sales?",
                "Per candle it is lower, but you sell 120 at once with no stall fee or weekend lost.",
            ),
            (
                "She wants her logo on the labels now.",
                "Custom labels are extra work, so price them separately, say one per candle.",
            ),
            (
                "Should the invoice mention the spring rate?",
                "Yes, one line stating the agreed reorder price avoids arguments later.",
            ),
            ("And if she pays late?", "Send a friendly reminder on day 31, then apply the late fee you wrote down."),
        ),
        {"ask": ("1200", "1300", "1400", "1500"), "shop": ("Juniper & Co", "The Linden Store", "Hearth and Home")},
    ),
    Scenario(
        "negotiation",
        "moving-company-quote",
        "You are a blunt but friendly consumer advocate who helps people negotiate service contracts.",
        (
            (
                "We're moving a three-bedroom house from Denver to Kansas City at the end of June. The first "
                "moving company came out and quoted $ask, binding, including packing the kitchen and a "
                "load of about 9,000 pounds. Two other quotes I found online ranged from $low to $high but they "
                "were only estimates. Is $ask reasonable, and can I bargain with movers at all?",
                "Movers do negotiate, especially for dates outside the last days of the month. A binding quote "
                "is worth something because the price can't grow on moving day, so compare it with the "
                "non-binding ones carefully before pushing for a discount.",
            ),
            (
                "I told the sales rep that another company said they could do it for $offer. He said that "
                "number was unrealistic for our weight, but offered $counter if we pack everything except the "
                "kitchen ourselves. We have two small kids, so packing is a lot for us. What now?",
                "Ask him to price the kitchen-only packing and full packing separately so you see what the "
                "packing is really costing. Then decide whether your time is worth the difference, and ask "
                "whether a mid-week date could bring the full-service price closer to $mid.",
            ),
            (
                "Turns out moving on Tuesday the 24th instead of Saturday the 28th saves a bit, and he came "
                "down to $mid with full packing. But the contract has a long carry fee if the truck can't park "
                "within 75 feet of our new door, and the new street is narrow. Should I worry about that?",
                "Yes, extra fees like long carry and shuttle trucks are where binding quotes creep up. Send him "
                "photos or a street view link of the new address now and ask him to confirm in writing that "
                "access is included in the $mid price.",
            ),
            (
                "He confirmed the access in writing but now wants a 25 percent deposit by card, and the "
                "valuation coverage is only 60 cents per pound unless we pay extra for full value protection. "
                "Our stuff isn't fancy, but the TV and the dining table matter to us. How do I handle this?",
                "A deposit is normal, though paying by credit card gives you dispute rights if they don't show. "
                "The 60-cent option pays almost nothing for a broken TV, so ask what full value protection "
                "costs with a deductible, and try to fold part of it into the final price of $final.",
            ),
        ),
        (
            ("Full value costs 180 extra.", "That is typical; ask if they'll split it given the mid-week date."),
            ("Is $final plus 90 fair then?", "Yes, that is a solid price for a binding full-service move."),
            ("Do we tip the crew?", "It's customary, around 20 to 40 per mover for a full day, in cash."),
            (
                "What about the garage shelves on Pine Street?",
                "Tell them now; unlisted items can be charged at an hourly rate.",
            ),
            (
                "The rep stopped answering emails.",
                "Call the office and ask for the written contract before paying anything more.",
            ),
            (
                "Should I inventory boxes myself?",
                "Yes, number them and photograph valuables before the crew wraps them.",
            ),
            (
                "Can they hold our stuff hostage?",
                "Not legally over a binding price; keep your signed quote handy on the day.",
            ),
        ),
        {"ask": ("3200", "3600", "3900", "4400")},
    ),
    # ----------------------------------------------------------------------------------------
    # Medical
    # ----------------------------------------------------------------------------------------
    Scenario(
        "medical",
        "ringing-ears-after-concert",
        "You are a careful nurse on a health information line; be clear, practical and say when to seek care.",
        (
            (
                "I went to a metal concert on Friday and stood right by the speakers for about three hours "
                "without earplugs. Since then I have a constant high-pitched ringing in both ears, worse in the "
                "left, and voices sound a bit muffled. It's now Sunday evening. Is this going to go away?",
                "Ringing and muffled hearing after loud noise is very common and often settles within a few "
                "days as the inner ear recovers. Keep away from loud sound in the meantime, and if the muffling "
                "hasn't clearly improved within about 72 hours, get your hearing checked.",
            ),
            (
                "It's a little better today but the left ear still feels full, like on a plane, and when I "
                "cover the right ear my own voice sounds strange on the left. I don't have pain or fever. I "
                "work in an open-plan office with headphones all day. Does that make it worse?",
                "A full feeling with one-sided dullness deserves attention, because sudden hearing loss in one "
                "ear is treated best when caught early. Headphones at low volume are fine, but since the left "
                "ear is lagging behind, please book a GP or urgent care visit in the next day or two.",
            ),
            (
                "The GP looked in my ears, said there's no wax or infection, and did a quick tuning-fork test. "
                "She referred me for a proper hearing test on Thursday and mentioned steroid tablets might "
                "help if it's nerve-related. I'm nervous about steroids. What are they actually for here?",
                "If the test shows a sudden sensorineural loss, a short course of steroids is used to reduce "
                "inflammation in the inner ear and can improve recovery, especially if started early. The "
                "usual short course is generally well tolerated, and the audiologist's results will show "
                "whether you need it at all.",
            ),
            (
                "The hearing test showed a mild dip at high frequencies in the left ear, and they started me on "
                "prednisolone for ten days. The ringing is quieter but I notice it at night when the room is "
                "silent, and it keeps me awake. Is there anything I can do at bedtime?",
                "Low background sound helps a lot: a fan, soft rain sounds or a sound machine takes the edge "
                "off the ringing in a silent room. Take the prednisolone in the morning with food, since "
                "taking it late can itself make sleep harder.",
            ),
        ),
        (
            (
                "The ringing gets louder after coffee.",
                "Caffeine affects some people's tinnitus, so try cutting back for a week.",
            ),
            (
                "Can I go to a gig next month?",
                "Only with proper musician's earplugs, and stay well away from the speakers.",
            ),
            ("Is the dip permanent?", "Often it partly or fully recovers, and the follow-up test will show how much."),
            (
                "Now there's a clicking sound too.",
                "Clicking is often the small ear muscles twitching; mention it at the follow-up.",
            ),
            ("Should I stop the steroids early?", "No, finish the ten days unless your doctor tells you otherwise."),
            ("My stomach is a bit upset.", "Take each dose with breakfast, and call your GP if it gets worse."),
            (
                "What kind of earplugs are best?",
                "Filtered musician's earplugs lower volume evenly without muffling the music.",
            ),
        ),
    ),
    Scenario(
        "medical",
        "gout-flare",
        "You are a friendly primary-care nurse giving practical advice; keep it short and mention red flags.",
        (
            (
                "I woke up at 3 a.m. with my big toe on the right foot swollen, red and so sore that even the "
                "bedsheet touching it hurts. I'm 52, a bit overweight, and I had a barbecue with a lot of beer "
                "and steak last night. My brother has gout. Could this be gout?",
                "That pattern, a sudden hot, swollen big toe at night after alcohol and red meat, with a family "
                "history, is very typical of a gout attack. Rest the foot, keep it raised with an ice pack "
                "wrapped in a towel, and see a doctor today to confirm it and start treatment.",
            ),
            (
                "I can't get an appointment until tomorrow morning. I have $med at home and normally take it "
                "for back aches. I also take a water pill for my blood pressure, hydrochlorothiazide. Is it "
                "okay to take $med for the toe tonight?",
                "$med is often used for gout pain, and taken with food it is usually fine for a day or two, "
                "but it can affect blood pressure and kidneys, so mention it to the doctor tomorrow. Your water "
                "pill can raise uric acid, which is worth raising at the appointment too.",
            ),
            (
                "The doctor confirmed gout, took blood for uric acid and gave me colchicine, two tablets now "
                "and one an hour later, then one twice a day. She said not to change my blood pressure pill "
                "yet. The toe is still hot. How long does an attack like this normally last?",
                "With colchicine started early, most attacks ease noticeably within two to three days and "
                "settle within a week or so. Keep drinking water, avoid alcohol, and keep the foot elevated "
                "when you can.",
            ),
            (
                "It's much better after four days, but the colchicine gave me loose stools. My uric acid came "
                "back at 9.1 and she mentioned allopurinol for the long term once this flare is over. I'm not "
                "keen on taking a pill forever. What does it do, and do I really need it?",
                "Allopurinol lowers uric acid so crystals stop forming, and it is usually recommended after "
                "repeated attacks or a very high level. Diet changes help too, but they rarely bring uric acid "
                "down enough alone, so discuss how often attacks come before deciding.",
            ),
        ),
        (
            ("The diarrhoea stopped once I lowered the dose.", "Good, that is a common and reasonable adjustment."),
            ("Is shellfish off the menu?", "Not forever, but keep shrimp and mussels to small, occasional portions."),
            ("What about cherries?", "Some studies suggest cherries help a little; they are fine to eat."),
            ("Can I wear my work boots?", "Once the swelling is down, yes; until then use soft, wide shoes."),
            ("Now my ankle is warm too.", "A second joint flaring needs a call to the doctor today."),
            ("Does diet soda count?", "Diet soda is fine; sugary drinks with fructose raise uric acid."),
        ),
    ),
    # ----------------------------------------------------------------------------------------
    # Math
    # ----------------------------------------------------------------------------------------
    Scenario(
        "math",
        "garden-path-annulus",
        "You are a patient geometry tutor for a ninth-grader; explain step by step and keep it brief.",
        (
            (
                "Homework question: a circular flower bed has a radius of 4 metres, and a gravel path 1.5 metres "
                "wide goes all the way around it. We need the area of the path alone. I tried pi times 1.5 "
                "squared and got about 7.07, but the answer key says something much bigger. What did I do wrong?",
                "Pi times 1.5 squared is the area of a small circle of radius 1.5, not the ring around the bed. "
                "The path is the big circle of radius 5.5 minus the flower bed of radius 4, so compute "
                "pi times 5.5 squared minus pi times 4 squared.",
            ),
            (
                "Okay so 5.5 squared is 30.25 and 4 squared is 16, so pi times 14.25 which is about 44.77 "
                "square metres. That matches the key. The next part asks how many bags of gravel we need if "
                "one bag covers 2.5 square metres at the right depth. Do I just divide?",
                "Yes, divide 44.77 by 2.5 to get about 17.9 bags. Since you can't buy part of a bag, round up "
                "to 18, because rounding down would leave part of the path bare.",
            ),
            (
                "Part c: they want to put a metal edging strip along both the inner and outer edge of the path. "
                "The strip is sold in 3-metre pieces. I think I need the circumference but I'm not sure which "
                "radius to use, or if it's diameter.",
                "You need both circumferences: 2 times pi times 4 for the inner edge and 2 times pi times 5.5 "
                "for the outer one, which is 2 times pi times 9.5, about 59.69 metres. Then divide by 3 and "
                "round up to the next whole piece.",
            ),
            (
                "So 59.69 over 3 is 19.9, meaning 20 pieces. The last part is harder: if the path had to have "
                "exactly the same area as the flower bed, how wide would it be? I set up pi times (4 + w) "
                "squared minus 16 pi equals 16 pi but I'm stuck after that.",
                "Good setup. Divide everything by pi to get (4 + w) squared = 32, then take the square root: "
                "4 + w is about 5.66, so w is about 1.66 metres.",
            ),
        ),
        (
            (
                "Why do we ignore the negative root?",
                "Because a width can't be negative, so only the positive root makes sense.",
            ),
            ("Should I leave it as root 32 minus 4?", "Exact form is nice, 4 root 2 minus 4, plus the decimal."),
            ("My friend got $wrong.", "Check whether they forgot to subtract the inner circle first."),
            ("Is 18 bags right even at 17.1?", "Yes, any leftover area means you still round up."),
            ("What if the bed was a square?", "Then you'd subtract square areas instead, same idea with side lengths."),
            ("Do I need units on every line?", "Put them on the final answers at least: square metres for area."),
        ),
    ),
    Scenario(
        "math",
        "mean-median-spread",
        "You are an encouraging statistics tutor for a high-school student; use short worked steps.",
        (
            (
                "Our class of nine students got these quiz scores: 12, 15, 15, 17, 18, 18, 18, 20, 29. I have "
                "to find the mean, median and mode and say which one best describes a typical student. I got "
                "the mean as 18 but it doesn't feel right. Can you check?",
                "Add them first: the total is 162, and 162 divided by 9 is exactly 18, so your mean is correct. "
                "The median is the fifth value in order, which is 18, and the mode is also 18 since it appears "
                "three times.",
            ),
            (
                "Oh nice, they're all 18. The next question says the student with 29 was a typo and should be "
                "19. How does each measure change? My guess is they all stay the same because it's only one "
                "number.",
                "The median and mode stay 18 because the middle value and the most common value don't move. The "
                "mean does change: the total drops by 10 to 152, and 152 divided by 9 is about 16.9.",
            ),
            (
                "Now they want the range and the standard deviation of the corrected data. The range is 19 "
                "minus 12, so 7. For standard deviation I remember something about squaring the differences "
                "from the mean but not the order of the steps.",
                "Subtract the mean from each score, square each difference, add the squares, divide by the "
                "number of scores, and take the square root at the end. With a mean of about 16.9 the squares "
                "add to about 48.9, so the standard deviation is the square root of 48.9 over 9, about 2.33.",
            ),
            (
                "Our teacher used n minus 1 instead of n in the example on the board, and got a slightly "
                "bigger number. Which one is right? The question just says 'find the standard deviation of the "
                "scores'.",
                "Dividing by n gives the population standard deviation, used when the data is the whole group; "
                "n minus 1 gives the sample version, used when the data estimates a bigger population. For one "
                "class described on its own, n is fine, but follow what your teacher did on the board.",
            ),
        ),
        (
            ("So the sample one is about 2.47?", "Yes, the square root of 48.9 over 8 is about 2.47."),
            (
                "Why does 29 affect the mean so much?",
                "The mean uses every value, so one extreme number pulls it along.",
            ),
            ("And the interquartile range?", "Take the median of each half, 15 and 18.5 here, and subtract."),
            ("Is $wrong a possible answer?", "No, check that you used the corrected scores and the same mean."),
            (
                "What's an outlier exactly?",
                "A value far from the rest, often beyond 1.5 times the IQR past a quartile.",
            ),
            (
                "Which should I draw, histogram or box plot?",
                "A box plot shows median, quartiles and outliers at a glance.",
            ),
            ("Can the mode be two numbers?", "Yes, if two values tie for most common the data is bimodal."),
        ),
    ),
    # ----------------------------------------------------------------------------------------
    # Trip
    # ----------------------------------------------------------------------------------------
    Scenario(
        "trip",
        "slovenia-julian-alps",
        "You are a practical travel planner who knows Central Europe well; give compact, concrete suggestions.",
        (
            (
                "My partner and I have eight days in Slovenia in mid-September, flying in and out of Ljubljana. "
                "We like easy-to-moderate hiking, lakes and good food, and we'll rent a small car. We don't "
                "want to change hotels every night. How would you split the time?",
                "Do three nights in Ljubljana at the start or end and five nights in one base in the Julian "
                "Alps, such as Bled or Bohinj. From there you can drive to the Soča valley, the Vintgar gorge "
                "and the Vogel cable car as day trips.",
            ),
            (
                "Bled looks very touristy in the photos. Would Bohinj be quieter, and is it still practical for "
                "the Soča valley? I read that the Vršič pass road has a lot of hairpin bends and I'm not a "
                "confident mountain driver.",
                "Bohinj is noticeably calmer and has a bigger, wilder lake, and it's a good base for hiking. "
                "Vršič has about fifty numbered hairpins, but in September traffic is light and the road is "
                "paved; drive it in the morning and take it slowly, or reach Soča from the south via the car "
                "train through the Bohinj tunnel.",
            ),
            (
                "The car train sounds fun. For hikes, we'd like one bigger day with a view, maybe five to six "
                "hours, nothing with cables or exposed sections. My partner is scared of heights but fine with "
                "steep trails. Any suggestions around Bohinj?",
                "Skip the Komarča climb from the Savica waterfall, since it has cabled sections, and walk up "
                "from the Blato pasture car park to the lower lakes of the Seven Lakes Valley instead. Another "
                "calm option is the ridge trail from the Vogel cable car top station, with huge views and no "
                "scrambling.",
            ),
            (
                "Perfect. For Ljubljana we have two full days at the end. We like markets, wine and walking, "
                "and we'd like one half-day trip that isn't a cave, since we've seen lots of caves. What "
                "would you fit in?",
                "Spend a morning at the central market and the Open Kitchen food stalls on a Friday, then walk "
                "the river and the castle hill. For a half-day, drive to the Goriška Brda hills for wine, or to "
                "the lakes near Cerknica if you prefer more nature.",
            ),
        ),
        (
            (
                "Is the Vogel cable car open in September?",
                "Yes, it runs year-round apart from a short maintenance break.",
            ),
            ("Do we need a vignette?", "Yes, buy the e-vignette online before driving on motorways."),
            ("What should we eat in Bohinj?", "Try local trout, štruklji dumplings and mohant cheese."),
            ("And if it rains all day?", "Visit the Savica waterfall and the Alpine dairy museum in Stara Fužina."),
            ("Is parking easy at Lake Bohinj?", "There are paid car parks at Ukanc and Ribčev Laz; arrive early."),
            ("How long is the drive to Piran?", "About two hours from Ljubljana if you want a day on the coast."),
            ("Is tap water safe?", "Yes, tap water in Slovenia is excellent; refill from any fountain."),
        ),
    ),
    Scenario(
        "trip",
        "montreal-quebec-train",
        "You are a friendly trip planner for Canada; answer with short, concrete, practical suggestions.",
        (
            (
                "We're a family of four, kids aged 9 and 12, planning six days in Montreal and Quebec City over "
                "the February school break. We'll fly into Montreal and don't want to drive in snow. The kids "
                "love sledding and anything with animals. How should we structure it?",
                "Spend three nights in Montreal and three in Quebec City, and take the VIA Rail train between "
                "them, about three and a half hours. Both cities are walkable and have good public transit, so "
                "you won't need a car.",
            ),
            (
                "In Montreal, what's good for kids in winter that isn't just shopping in the underground city? "
                "We'd like at least one outdoor day, and the Biodome came up in my search. Is that worth it "
                "with a 12-year-old who thinks he's too old for zoos?",
                "The Biodome is worth it because it's five ecosystems indoors, with penguins and a rainforest, "
                "which usually wins over older kids too. For an outdoor day, go skating and sledding on Mount "
                "Royal near Beaver Lake, where you can rent skates and tubes.",
            ),
            (
                "Great. In Quebec City we'll be there during the Winter Carnival. We read about the ice hotel "
                "and the toboggan slide on Dufferin Terrace. How cold will it be, and how do I keep the kids "
                "warm enough to enjoy it all day?",
                "Expect daytime temperatures around minus 10 to minus 15 Celsius, colder with wind. Dress them "
                "in thermal base layers, snow pants, insulated boots and mittens rather than gloves, and plan "
                "indoor warm-up breaks every hour or two in a café or museum.",
            ),
            (
                "The ice hotel is about half an hour outside the city. Can we get there without a car, and is "
                "a guided tour enough or should we stay a night? My wife says sleeping in a room at minus 5 "
                "with kids sounds like a nightmare.",
                "There are shuttle buses from downtown hotels to the ice hotel, and a daytime visit is enough "
                "to see the ice rooms, chapel and slide. Staying overnight is expensive and hard with children, "
                "so your wife's instinct is sound.",
            ),
        ),
        (
            ("Should we book the train early?", "Yes, the Escape fares sell out on school-break weekends."),
            ("What about Montmorency Falls?", "Go; the frozen falls and the sugar loaf of ice are impressive."),
            ("Do kids need passports?", "For flights into Canada, yes, every child needs their own passport."),
            ("Is poutine worth the hype?", "Absolutely, try it at a casse-croûte rather than a chain."),
            (
                "The 9-year-old has asthma.",
                "Pack a scarf to warm the air he breathes and keep his inhaler inside his coat.",
            ),
            ("Where should we stay in Old Quebec?", "Inside the walls near Rue Saint-Jean keeps everything walkable."),
            ("Will French be a problem?", "No, most people in tourist areas switch to English easily."),
        ),
    ),
    # ----------------------------------------------------------------------------------------
    # Code
    # ----------------------------------------------------------------------------------------
    Scenario(
        "code",
        "pandas-chained-assignment",
        "You are a senior data engineer reviewing a colleague's Python and pandas code; be precise and kind.",
        (
            (
                "I'm cleaning a sales export and want to set negative quantities to zero. I wrote "
                "df[df['qty'] < 0]['qty'] = 0 and pandas printed a SettingWithCopyWarning, and when I check "
                "afterwards the negative rows are still there. Why doesn't the assignment stick?",
                "df[df['qty'] < 0] returns a new DataFrame, and ['qty'] = 0 writes into that temporary copy, "
                "which is then thrown away. Do it in one indexing step on the original: "
                "df.loc[df['qty'] < 0, 'qty'] = 0.",
            ),
            (
                "That worked. But later in the same notebook I do east = df[df['region'] == 'East'] and then "
                "east['discount'] = east['price'] * 0.1 and I get the warning again. Here I actually want a "
                "separate table for the East region. What's the clean way?",
                "Make the copy explicit so pandas knows you intend a separate object: "
                "east = df[df['region'] == 'East'].copy(). After that, adding the discount column changes "
                "only east and the warning goes away.",
            ),
            (
                "Someone on my team said to just silence it with pd.options.mode.chained_assignment = None at "
                "the top of the script. It would make the output much cleaner for our daily job. Is that okay "
                "as a quick fix?",
                "I'd avoid it, because the warning is pointing at real bugs like the first one, where your data "
                "silently didn't change. Fix the few places with .loc or .copy() instead; turning on "
                "copy-on-write mode in newer pandas versions is a better long-term switch than silencing.",
            ),
            (
                "Last one: I have a function def clean(frame): frame['email'] = frame['email'].str.lower() "
                "and then return frame, and after calling clean(raw) the raw table is also lowercased. My "
                "colleague was surprised. Is that expected?",
                "Yes, DataFrames are passed by reference, so the function mutates the same object the caller "
                "holds. If callers shouldn't see changes, start the function with frame = frame.copy(), or "
                "return a new frame using frame.assign(email=frame['email'].str.lower()).",
            ),
        ),
        (
            ("Does .copy() double memory use?", "Yes, for that slice, which is usually fine for a regional subset."),
            (
                "What about in load_orders.py?",
                "Same pattern there: replace the chained indexing with a single .loc call.",
            ),
            ("Is .assign slower than direct assignment?", "Slightly, but the difference is negligible at this size."),
            ("How do I enable copy-on-write?", "Set pd.options.mode.copy_on_write = True near your imports."),
            (
                "The warning still appears in cell 14.",
                "Look for a slice made earlier without .copy() that you modify there.",
            ),
            (
                "Can I use .iloc for this too?",
                "Only with integer positions, so .loc with a boolean mask is clearer here.",
            ),
        ),
    ),
    Scenario(
        "code",
        "sql-left-join-filter",
        "You are a careful database engineer doing a friendly SQL code review; keep explanations short and exact.",
        (
            (
                "I want a report with every customer and how many orders they placed in 2024, including "
                "customers with zero. My query is SELECT c.id, COUNT(o.id) FROM customers c LEFT JOIN orders o "
                "ON o.customer_id = c.id WHERE o.created_at >= '2024-01-01' GROUP BY c.id. Customers with no "
                "orders are missing. Why?",
                "The WHERE clause runs after the join, and for customers without orders o.created_at is NULL, "
                "so the comparison filters those rows out and the LEFT JOIN behaves like an inner join. Move "
                "the date condition into the ON clause: LEFT JOIN orders o ON o.customer_id = c.id AND "
                "o.created_at >= '2024-01-01'.",
            ),
            (
                "Moving it into ON fixed the zeros. I also need an upper bound, so I added AND o.created_at <= "
                "'2024-12-31'. Our created_at column is a timestamp, not a date. Is that a problem?",
                "Yes, '2024-12-31' means midnight at the start of that day, so orders placed later on New "
                "Year's Eve are excluded. Use a half-open range instead: o.created_at >= '2024-01-01' AND "
                "o.created_at < '2025-01-01'.",
            ),
            (
                "Now the product manager wants total revenue per customer too, so I added SUM(o.amount). For "
                "customers with no orders the column shows NULL instead of 0, and the dashboard chart breaks on "
                "NULL. How should I handle that?",
                "SUM over no rows returns NULL, unlike COUNT, which returns 0. Wrap it as COALESCE(SUM(o.amount), "
                "0) so the dashboard always gets a number.",
            ),
            (
                "Last thing: I joined order_items as well to count products, and now the revenue numbers are "
                "way too high, like two or three times what finance reports. COUNT(o.id) went up as well. "
                "What happened?",
                "Joining order_items repeats each order once per item, so SUM(o.amount) adds the same order "
                "several times and COUNT counts duplicates. Use COUNT(DISTINCT o.id), and aggregate items in a "
                "subquery per order before joining, so each order appears only once.",
            ),
        ),
        (
            ("Is COUNT(*) wrong here?", "Yes, COUNT(*) counts the NULL row too, giving 1 instead of 0."),
            ("Should I index created_at?", "Yes, a composite index on (customer_id, created_at) suits this query."),
            ("What about refunded orders?", "Add AND o.status <> 'refunded' inside the ON clause as well."),
            ("Would a CTE be cleaner?", "Yes, a CTE for per-order item counts makes the query easier to read."),
            ("Finance uses UTC, we use local time.", "Then convert created_at to UTC before applying the date range."),
            ("Does this work in MySQL too?", "Yes, the join and COALESCE behave the same in MySQL and Postgres."),
            (
                "The report view is called customer_kpis.",
                "Then update the view definition and add a test row with zero orders.",
            ),
        ),
    ),
    # ----------------------------------------------------------------------------------------
    # Role-play
    # ----------------------------------------------------------------------------------------
    Scenario(
        "roleplay",
        "clockwork-heist",
        "You are the narrator of a steampunk fantasy heist; describe the scene vividly and voice the characters.",
        (
            (
                "*I adjust my brass goggles and crouch on the rooftop opposite the Guild Vault of Cogsworth.* "
                "Tonight we steal the Orrery Key before the Artificers' Gala ends at midnight. Mira, my "
                "lockbreaker, is beside me. What do I see below?",
                "*Gaslamps hiss along the cobbled square, and two clockwork sentries tick their slow patrol "
                "past the vault's bronze doors.* Mira whispers, \"Their gears wind down every ninety seconds. "
                "That's our gap, if you can count.\"",
            ),
            (
                "*I pull out my pocket watch and time their rounds.* On the next gap we rappel down the side "
                "wall to the service hatch. *I hand Mira the grappling hook.* You go first, I'll watch the "
                "sentries.",
                "*The hook bites the gutter with a soft clank, and Mira slides down into shadow.* The nearest "
                "sentry pauses, its head turning with a grinding whir, then resumes its march. *She signals "
                "from below: the hatch is locked with a seven-dial combination.*",
            ),
            (
                "*I climb down after her and press my ear to the hatch while she works the dials.* Can you hear "
                "the tumblers, or do we need the resonance fork? *I keep one eye on the square.*",
                '*Mira frowns and draws the tuning fork from her belt.* "Artificer locks. They\'re dampened." '
                "*She strikes the fork; the dials hum, and one by one they click, until the last clicks and "
                "the hatch sighs open onto a stair lit by pale green lamps.*",
            ),
            (
                "*We descend the stair quietly.* At the bottom I check the floor for pressure plates before "
                "stepping. *I scatter a handful of brass shavings ahead of us.* Where is the Orrery Key kept?",
                "*The shavings skitter across marble tiles, and three of them twitch toward hidden magnets in "
                "the floor.* Ahead, in a glass dome, the Orrery Key turns slowly above a model of the planets. "
                "*Somewhere upstairs, a clock begins to chime the quarter hour before midnight.*",
            ),
        ),
        (
            (
                "*I step only on the clean tiles.*",
                "*You cross safely, and the dome's reflection shows your tense faces.*",
            ),
            ("How long until the gala ends?", '*Mira checks the chime.* "Fifteen minutes, maybe less."'),
            (
                "*I lift the glass dome slowly.*",
                "*A thin wire trembles against the glass and a bell stays silent, barely.*",
            ),
            ("Mira, any traps on the key?", '*She squints.* "A counterweight. Swap it with something of equal mass."'),
            (
                "*I swap the key for my pocket watch.*",
                "*The planets stop turning for a breath, then resume their slow orbit.*",
            ),
            (
                "Do we go back the way we came?",
                '*Mira shakes her head.* "The sentries reset at midnight. The sewer grate."',
            ),
            ("*I hear footsteps above.*", '*A lantern sways down the stair, and a voice calls, "Who\'s there?"*'),
        ),
    ),
    Scenario(
        "roleplay",
        "snowbound-monastery",
        "You are the game master of a wintry mystery in a remote mountain monastery; keep it atmospheric and fair.",
        (
            (
                "*I stamp the snow off my boots in the gatehouse of the Monastery of Saint Ivo, high in the "
                "pass.* I'm Brother Aldous, sent by the bishop because the great bell rang by itself three "
                "nights ago and the bell-ringer, Brother Tomas, has not been seen since. Who greets me?",
                '*A stooped prior with ink-stained fingers lifts a lantern to your face.* "Prior Benedek. You '
                'made good time, Brother, the road has been closed since the storm." *Behind him, the '
                "monks in the corridor fall silent and will not meet your eyes.*",
            ),
            (
                "*I ask the prior to take me straight to the bell tower.* When exactly did the bell ring, and "
                "who was the last to see Brother Tomas? *I watch his face as he answers.*",
                '"Just past Matins, a little after two in the morning. Brother Kasimir saw Tomas carrying '
                'firewood up the tower stair after Compline." *His hand tightens on the lantern as you reach '
                "the tower door, which is bolted from the outside.*",
            ),
            (
                "*I examine the bolt and the floor of the stair for tracks before going up.* Is there snow or "
                "wax or anything on the steps? *I crouch with my own candle close to the stone.*",
                "*Dried candle wax spatters the lower steps, and among them you find a single boot print, too "
                "small for a grown monk, pointing down the stairs.* At the top, the bell rope has been cut "
                "cleanly at shoulder height, and the firewood lies scattered by the window.",
            ),
            (
                "*I go to the window and look out across the snow.* Are there footprints below, or a way "
                "someone could climb down? *Then I turn to the prior.* Who in this monastery has small feet?",
                "*Below, a trail of half-filled prints leads from the tower's base toward the old granary, "
                'softened by fresh snow.* The prior hesitates. "Only the novice, Matthias. He is fourteen. '
                'He has been sleeping in the infirmary with a fever since the night the bell rang."',
            ),
        ),
        (
            ("*I head for the infirmary.*", "*The infirmarian blocks the door, her arms crossed.*"),
            ("Where does the granary lead?", '*The prior glances away.* "Only to the old cellars. They are sealed."'),
            (
                "*I pick up a piece of the cut rope.*",
                "*The fibres are stiff with frost, and faintly smell of lamp oil.*",
            ),
            ("Did anyone else hear the bell?", '*Brother Kasimir nods.* "Everyone did. It rang only three times."'),
            (
                "*I follow the prints to the granary.*",
                "*The door stands ajar, and something drags across the floor inside.*",
            ),
            (
                "Matthias, what did you see that night?",
                '*The boy shivers under the blanket.* "A light in the cellars, Brother."',
            ),
        ),
    ),
)

HOLDOUT4_FOLLOWUPS: dict[str, tuple[Turn, ...]] = {
    "negotiation": (
        ("Should I mention the other offer?", "Yes, briefly and honestly; it gives your number some weight."),
        ("What if they won't budge at all?", "Decide your walk-away point beforehand and stick to it calmly."),
        ("Is splitting the difference fair?", "Often, but only if their starting point was reasonable too."),
        ("Do I need it in writing?", "Yes, a short email confirming the terms is enough for most deals."),
        ("They want an answer today.", "A deadline you didn't set is pressure; ask for until tomorrow morning."),
        ("Can I ask for extras instead?", "Yes, extras often cost them less than cutting the price."),
    ),
    "medical": (
        ("Should I take something for it?", "A simple painkiller is fine short-term if it suits your other medicines."),
        ("Is it contagious?", "No, this is not something you can pass on to others."),
        ("Can I still exercise?", "Gentle activity is fine; stop if it makes the symptoms clearly worse."),
        ("It's worse in the mornings.", "That is worth noting down and mentioning at your next appointment."),
        ("When should I go to A&E?", "Go straight away if you have severe pain, trouble breathing or sudden weakness."),
        ("Does alcohol make it worse?", "It can, so it is best to skip it until you have recovered."),
    ),
    "math": (
        ("Why does that step work?", "Because doing the same thing to both sides keeps them equal."),
        ("Can I use a calculator?", "Yes for the arithmetic, but show the setup on paper."),
        (
            "How many decimals should I give?",
            "Two decimal places is usually enough unless the question says otherwise.",
        ),
        ("I got a different number.", "Send me each line of your working and we'll find where it split off."),
        ("Is there another way to solve it?", "Yes, drawing a sketch first often shows a quicker route."),
        ("What's the formula again?", "Write it at the top of your page so you can refer back to it."),
    ),
    "trip": (
        ("Is it safe for walking at night?", "Generally yes in the central areas; use normal city caution."),
        ("How much should we budget per day?", "Plan a mid-range daily budget for food and sights, plus transport."),
        ("What's the weather like then?", "Changeable, so bring a warm layer and a waterproof jacket."),
        ("Do we need to book restaurants?", "For popular places on weekends, yes, a day or two ahead."),
        ("Any local phrases we should know?", "Hello, please, thank you and the bill, please go a long way."),
        ("Should we get a transit pass?", "If you'll ride more than twice a day, a pass usually pays off."),
    ),
    "code": (
        ("Would a linter have caught this?", "Possibly; enabling stricter rules in CI helps catch similar issues."),
        ("How would you name this function?", "Name it after what it returns, with a clear verb in front."),
        ("Can we merge with a TODO?", "Only if there's a ticket linked and it isn't a correctness bug."),
        ("Is this fine performance-wise?", "Yes for current data sizes; measure before optimising further."),
        ("Should this go in the docs?", "A short comment explaining why is enough; the docs can link to it."),
        ("I pushed the fix.", "Thanks, I'll rerun the checks and approve if they pass."),
    ),
    "roleplay": (
        ("*I draw my weapon quietly.*", "*Steel whispers free, and the shadows seem to hold their breath.*"),
        ("What can I hear?", "*Only your own heartbeat at first, then something faint, farther off.*"),
        ("*I look for another way out.*", "*A narrow gap in the far corner catches your eye.*"),
        ("Who goes there?", "*Silence answers, then a soft laugh from the dark.*"),
        ("*I wait and watch.*", "*Minutes pass slowly before anything moves.*"),
        ("Can we trust them?", '*A shrug.* "Trust is a luxury. Use them while they\'re useful."'),
    ),
}

HOLDOUT4_OFFTOPIC: tuple[tuple[Turn, Turn, Turn], ...] = (
    (
        (
            "Unrelated, but my sourdough starter smells like nail polish remover. Did I kill it?",
            "No, that acetone smell means it's hungry; discard most of it and feed it flour and water twice a day.",
        ),
        ("What ratio should I feed it?", "Equal weights of starter, flour and water is a good standard ratio."),
        ("Can I keep it in the fridge?", "Yes, then feed it once a week and let it warm up before baking."),
    ),
    (
        (
            "How do I stop my cat from scratching the sofa?",
            "Put a sturdy, tall scratching post right next to the sofa and reward her when she uses it.",
        ),
        ("She ignores the post.", "Try a sisal post or a flat cardboard scratcher, rubbed with catnip."),
        ("Are nail caps okay?", "Yes, soft nail caps are humane if fitted properly and replaced as they fall off."),
    ),
    (
        (
            "Quick question before I forget: why does tennis scoring go 15, 30, 40 instead of 45?",
            "Nobody knows for sure, but a popular theory is clock faces, with 45 shortened to 40 to allow for deuce.",
        ),
        ("What does deuce mean?", "Both players are at 40, so one needs two points in a row to win the game."),
        ("And love for zero?", "Possibly from the French l'oeuf, egg, for the zero shape, though it's disputed."),
    ),
    (
        (
            "Totally different topic. My daughter asked me why the sea is salty but rivers aren't, and I had "
            "no good answer. Can you explain it simply?",
            "Rain slowly dissolves minerals from rocks and rivers carry them to the sea; when seawater "
            "evaporates the salt stays behind, so it builds up over millions of years.",
        ),
        ("So rivers are a little salty?", "Yes, very slightly, just far too little for us to taste."),
        ("Which sea is the saltiest?", "The Dead Sea, roughly nine times saltier than the ocean."),
    ),
    (
        (
            "One of the floorboards in our hallway squeaks every time someone walks over it. Can I fix that "
            "without pulling up the carpet?",
            "Yes, use a squeak-repair kit that drives a breakaway screw through the carpet into the joist, "
            "then snaps the head off below the pile.",
        ),
        ("How do I find the joist?", "Use a stud finder, or tap and listen for the solid sound."),
        (
            "Would talcum powder work instead?",
            "Only on bare boards; it lubricates the joints but through carpet it can't reach.",
        ),
    ),
    (
        (
            "Off topic, but which guitar chords should a complete beginner learn first?",
            "Start with G, C, D, E minor and A minor; they cover hundreds of simple songs.",
        ),
        ("My fingertips hurt.", "That's normal for the first couple of weeks until calluses form."),
        ("How long should I practise daily?", "Fifteen to twenty minutes every day beats two hours once a week."),
    ),
    (
        (
            "Why did the Great Wall of China get built in the first place?",
            "Successive dynasties built walls to keep out raids by northern nomadic groups and to control trade.",
        ),
        ("Is it really visible from space?", "No, not to the naked eye from orbit; it's too narrow."),
        ("How long is it in total?", "All the sections together measure about 21,000 kilometres."),
    ),
    (
        (
            "The lower leaves on my tomato plants are turning yellow with brown spots. It's been rainy for "
            "weeks. What's going on?",
            "That sounds like early blight, a fungus that spreads in wet weather and starts on the lowest leaves.",
        ),
        ("Should I pull them off?", "Yes, remove the spotted leaves and throw them away, not on the compost."),
        ("Can I still eat the tomatoes?", "Yes, the fruit is safe to eat as long as it isn't rotting."),
    ),
)
