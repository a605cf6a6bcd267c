"""Regenerate SecureCart's seed CSVs (products, customers, inventory). Deterministic, standard library only.

    python seed/generate.py          # rewrites seed/*.csv next to this file
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent

# category -> (SKU code, [(name, price in dollars, what makes it worth buying)])
CATALOG: dict[str, tuple[str, list[tuple[str, float, str]]]] = {
    "electronics": ("ELEC", [
        ("Aurora Wireless Earbuds", 79.99, "28-hour battery life and active noise cancelling"),
        ("Pulse Bluetooth Speaker", 59.99, "waterproof IPX7 housing and 360-degree sound"),
        ("VoltCharge 65W USB-C Charger", 39.99, "gallium nitride design that charges a laptop and phone at once"),
        ("ClearView 27-inch 4K Monitor", 329.00, "IPS panel with 99% sRGB coverage"),
        ("Nimbus Mechanical Keyboard", 119.00, "hot-swappable tactile switches and per-key lighting"),
        ("Glide Ergonomic Mouse", 49.99, "vertical grip that reduces wrist strain"),
        ("StreamCam 1080p Webcam", 69.99, "auto-focus and dual noise-reducing microphones"),
        ("PowerBank 20000mAh", 45.00, "two USB-C ports with 30W fast charging"),
        ("Orbit Smartwatch", 199.00, "heart-rate, sleep and GPS tracking"),
        ("Echo Studio Headphones", 149.00, "over-ear comfort with 40 mm drivers"),
        ("TravelHub 7-in-1 USB-C Adapter", 34.99, "HDMI, SD card and 100W pass-through charging"),
        ("SwiftDrive 1TB Portable SSD", 109.00, "read speeds up to 1050 MB/s in a pocket-sized case"),
        ("Lumen Smart LED Bulb 4-Pack", 39.99, "16 million colours and voice assistant support"),
        ("HomeGuard Wi-Fi Security Camera", 89.99, "2K video, night vision and local storage"),
        ("Mesh Wi-Fi 6 Router 2-Pack", 229.00, "whole-home coverage up to 4500 sq ft"),
        ("Pixel Pro E-Reader", 139.00, "glare-free 7-inch display with warm light"),
        ("Tempo Fitness Tracker", 59.00, "seven-day battery and swim-proof design"),
        ("Cinema Mini Projector", 249.00, "1080p picture up to 120 inches"),
        ("DeskDock Wireless Charging Pad", 29.99, "15W Qi charging with a non-slip surface"),
        ("Braided USB-C Cable 2-Pack", 14.99, "2 m nylon-braided cables rated for 100W"),
        ("Soundbar 2.1 with Subwoofer", 179.00, "Dolby Audio and HDMI ARC"),
        ("Gaming Controller Pro", 64.99, "low-latency wireless and remappable back buttons"),
        ("Smart Plug Mini 2-Pack", 24.99, "schedules and energy monitoring from your phone"),
        ("Noise-Cancelling Travel Headphones", 229.00, "foldable design with 35-hour battery"),
        ("Digital Drawing Tablet", 89.00, "8192 pressure levels and a battery-free pen"),
    ]),
    "home": ("HOME", [
        ("Linen Blend Throw Blanket", 49.00, "soft stonewashed weave in a generous 130 x 170 cm"),
        ("Memory Foam Pillow", 39.99, "contoured support with a washable bamboo cover"),
        ("Blackout Curtain Pair", 44.99, "thermal lining that blocks 99% of light"),
        ("Ceramic Table Lamp", 59.00, "hand-glazed base with a linen shade"),
        ("Wool Area Rug 160 x 230 cm", 219.00, "hand-tufted New Zealand wool"),
        ("Bamboo Bath Towel Set", 54.99, "six ultra-absorbent towels"),
        ("Aroma Diffuser", 32.00, "whisper-quiet mist with seven light colours"),
        ("Floating Wall Shelf Set", 36.99, "solid oak shelves with hidden brackets"),
        ("Cotton Percale Sheet Set Queen", 89.00, "crisp 300-thread-count percale"),
        ("Down Alternative Duvet", 99.00, "all-season warmth that is machine washable"),
        ("Scented Soy Candle Trio", 29.00, "cedar, fig and sea salt scents"),
        ("Round Wall Mirror 60 cm", 74.99, "thin brushed brass frame"),
        ("Storage Basket Set", 34.00, "three woven seagrass baskets with handles"),
        ("Velvet Cushion Cover 2-Pack", 24.99, "hidden zip and rich jewel tones"),
        ("Cordless Stick Vacuum", 189.00, "45-minute runtime and HEPA filtration"),
        ("Smart Thermostat", 129.00, "learns your schedule to cut heating costs"),
        ("Indoor Plant Pot Set", 39.00, "three matte ceramic pots with drainage trays"),
        ("Shoe Rack Bench", 69.99, "bamboo bench with two storage tiers"),
        ("Wall Clock Minimalist 30 cm", 27.50, "silent sweep movement"),
        ("Air Purifier HEPA 13", 149.00, "cleans a 40 m2 room five times an hour"),
        ("Weighted Blanket 7 kg", 89.99, "evenly distributed glass beads for calmer sleep"),
        ("Laundry Hamper with Lid", 32.99, "collapsible cotton-rope design"),
        ("Doormat Coir Natural", 22.00, "durable coconut fibre that traps dirt"),
        ("Picture Frame Gallery Set", 59.00, "seven black frames with mats"),
        ("Dehumidifier 12 L", 169.00, "auto shut-off and continuous drain option"),
    ]),
    "kitchen": ("KITC", [
        ("Chef's Knife 20 cm", 64.00, "forged German steel with a full tang"),
        ("Cast Iron Skillet 26 cm", 39.99, "pre-seasoned and oven safe"),
        ("Nonstick Frying Pan Set", 59.99, "PFOA-free coating in 20 and 28 cm sizes"),
        ("Pour-Over Coffee Set", 44.00, "glass carafe, steel dripper and reusable filter"),
        ("Electric Kettle 1.7 L", 49.99, "variable temperature and keep-warm mode"),
        ("Stand Mixer 5 L", 279.00, "ten speeds with dough hook, whisk and beater"),
        ("Bamboo Cutting Board Set", 29.99, "three boards with juice grooves"),
        ("Stainless Steel Cookware 10-Piece", 199.00, "tri-ply bases for even heating"),
        ("Glass Meal Prep Containers 10-Pack", 34.99, "leak-proof lids that are microwave safe"),
        ("Digital Kitchen Scale", 19.99, "1 g precision up to 5 kg"),
        ("High-Speed Blender", 129.00, "1400W motor for smoothies and soups"),
        ("Dutch Oven Enamelled 5.5 L", 89.00, "cast iron with chip-resistant enamel"),
        ("Air Fryer 5.5 L", 99.99, "crisp results with 85% less oil"),
        ("Espresso Machine Compact", 249.00, "15-bar pump with a steam wand"),
        ("Silicone Utensil Set", 26.99, "heat resistant to 230 C"),
        ("Burr Coffee Grinder", 79.00, "31 grind settings from espresso to French press"),
        ("Spice Rack with 20 Jars", 42.00, "labelled glass jars on a rotating stand"),
        ("Wooden Salad Bowl", 36.00, "acacia wood with matching servers"),
        ("Toaster 4-Slice", 54.99, "extra-wide slots and bagel setting"),
        ("Insulated Water Bottle 750 ml", 27.99, "keeps drinks cold for 24 hours"),
        ("Baking Sheet Set", 31.00, "three aluminised steel sheets that resist warping"),
        ("Hand Mixer", 39.00, "five speeds with turbo boost"),
        ("French Press 1 L", 32.50, "double-walled stainless steel"),
        ("Knife Block Set 7-Piece", 119.00, "high-carbon blades in a walnut block"),
        ("Rice Cooker 1.8 L", 69.00, "fuzzy-logic cooking for perfect grains"),
    ]),
    "outdoors": ("OUTD", [
        ("Trailblazer 2-Person Tent", 169.00, "three-season protection that packs to 2 kg"),
        ("Summit 40 L Hiking Backpack", 119.00, "ventilated back panel and rain cover"),
        ("Down Sleeping Bag -5 C", 149.00, "650-fill down in a compressible sack"),
        ("Self-Inflating Sleeping Pad", 59.99, "5 cm of insulated comfort"),
        ("Camping Stove Compact", 44.99, "boils a litre in under four minutes"),
        ("Trekking Poles Carbon Pair", 79.00, "flick-lock adjustment and cork grips"),
        ("Headlamp 400 Lumen", 29.99, "rechargeable with red night mode"),
        ("Water Filter Squeeze", 34.99, "removes 99.9999% of bacteria"),
        ("Folding Camp Chair", 39.00, "supports 130 kg with a cup holder"),
        ("Hammock with Tree Straps", 49.99, "parachute nylon that packs into its own pouch"),
        ("Insulated Rain Jacket", 129.00, "waterproof, breathable and windproof shell"),
        ("Hiking Boots Waterproof", 139.00, "grippy lugged outsole and ankle support"),
        ("Cooler Box 30 L", 89.00, "keeps ice for up to four days"),
        ("Solar Lantern", 24.99, "charges by day and glows for 12 hours"),
        ("Picnic Blanket Waterproof", 29.00, "machine-washable fleece with a waterproof back"),
        ("Camping Cookware Set", 36.99, "nesting anodised pots for two"),
        ("Binoculars 10x42", 99.00, "fog-proof with phase-coated prisms"),
        ("Bike Helmet MIPS", 89.99, "rotational impact protection and a rear light"),
        ("Yoga Mat Outdoor", 42.00, "grippy natural rubber that rolls up tight"),
        ("Garden Hose Expandable 30 m", 34.00, "kink-free with a nine-pattern nozzle"),
        ("Portable Grill Charcoal", 69.00, "foldable legs and a locking lid"),
        ("Fishing Rod Telescopic", 54.00, "carbon fibre that collapses to 45 cm"),
        ("Dry Bag 20 L", 19.99, "roll-top seal that keeps gear dry"),
        ("Paddle Board Inflatable", 399.00, "stable 10-foot board with pump and paddle"),
        ("Multi-Tool 15-in-1", 49.00, "stainless pliers, knife and drivers"),
    ]),
    "books": ("BOOK", [
        ("Designing Data-Intensive Systems", 45.99, "a practical tour of storage, replication and streams"),
        ("The Cloud Architect's Handbook", 39.99, "patterns for resilient multi-tier applications"),
        ("Workflow Orchestration in Practice", 42.00, "state machines, retries and compensating actions"),
        ("The Quiet Orchard", 16.99, "a novel about three generations of a farming family"),
        ("Salt and Smoke Cookbook", 32.00, "120 recipes for grilling and preserving"),
        ("Mountains of the North", 28.50, "a photographic journey across alpine ranges"),
        ("Learning Python the Steady Way", 38.00, "exercises that build real programs"),
        ("The Last Lighthouse Keeper", 14.99, "a mystery set on a storm-bound island"),
        ("Mindful Mornings", 18.00, "short daily practices for calmer days"),
        ("Gardening for Small Spaces", 24.99, "grow food on balconies and windowsills"),
        ("A Brief History of Trade", 22.00, "how commerce shaped the modern world"),
        ("Startup Finance Essentials", 29.99, "cash flow, pricing and fundraising explained"),
        ("The Night Market", 15.99, "a fantasy adventure through a city that wakes at dusk"),
        ("Stargazing for Beginners", 19.99, "seasonal sky maps and telescope tips"),
        ("Bread Every Day", 27.00, "sourdough and yeasted loaves for home bakers"),
        ("Security Engineering Field Guide", 49.00, "threat models and defences for web shops"),
        ("The Children's Atlas of Animals", 21.99, "illustrated maps of wildlife on every continent"),
        ("Running Your First Marathon", 17.50, "a sixteen-week plan with nutrition advice"),
        ("Poems for Rainy Afternoons", 13.99, "a collection of contemporary poetry"),
        ("The Art of Watercolour", 26.00, "techniques from washes to fine detail"),
        ("Distributed Databases Explained", 44.00, "consensus, sharding and read replicas made clear"),
        ("Under a Copper Sky", 16.50, "a historical novel of the mining frontier"),
        ("Home Repair Made Simple", 23.99, "step-by-step fixes for common problems"),
        ("The Habit Blueprint", 19.00, "small changes that compound into big results"),
        ("World Street Food", 34.00, "recipes and stories from forty cities"),
    ]),
    "apparel": ("APPA", [
        ("Merino Crew Sweater", 89.00, "temperature-regulating fine merino wool"),
        ("Organic Cotton T-Shirt", 24.00, "heavyweight jersey that keeps its shape"),
        ("Slim Stretch Chinos", 59.00, "four-way stretch with a tailored fit"),
        ("Waterproof Trench Coat", 179.00, "taped seams with a removable liner"),
        ("Everyday Running Shoes", 109.00, "responsive foam and a breathable knit upper"),
        ("Denim Jacket Classic", 79.00, "rigid denim that softens with wear"),
        ("Fleece Zip Hoodie", 54.99, "recycled polyester fleece"),
        ("Leather Belt", 39.00, "full-grain leather with a brass buckle"),
        ("Wool Beanie", 22.00, "ribbed knit in soft lambswool"),
        ("Linen Button-Down Shirt", 64.00, "breezy European linen"),
        ("Puffer Vest Packable", 69.99, "lightweight insulation that packs into a pocket"),
        ("Yoga Leggings High-Rise", 49.00, "squat-proof fabric with a side pocket"),
        ("Canvas Sneakers", 55.00, "vulcanised sole and cotton canvas upper"),
        ("Rain Boots", 64.99, "natural rubber with a cushioned footbed"),
        ("Cashmere Scarf", 95.00, "pure Mongolian cashmere"),
        ("Athletic Shorts 7-inch", 34.00, "quick-dry fabric with a liner"),
        ("Oxford Dress Shoes", 149.00, "Goodyear-welted leather"),
        ("Thermal Base Layer Set", 59.00, "moisture-wicking top and bottoms"),
        ("Bamboo Socks 5-Pack", 25.00, "soft, breathable and odour resistant"),
        ("Summer Midi Dress", 72.00, "flowing viscose with a tie waist"),
        ("Leather Gloves Touchscreen", 44.00, "cashmere-lined with touchscreen fingertips"),
        ("Baseball Cap Washed Cotton", 21.00, "adjustable strap and curved brim"),
        ("Quilted Overshirt", 84.00, "light padding for cool evenings"),
        ("Swim Shorts", 36.00, "quick-dry shell with a mesh lining"),
        ("Canvas Tote Bag", 28.00, "heavy canvas with an inner zip pocket"),
    ]),
    "toys": ("TOYS", [
        ("Wooden Building Blocks 100-Piece", 34.99, "sustainably sourced beech in bright colours"),
        ("Remote Control Racing Car", 49.99, "25 km/h top speed with a rechargeable battery"),
        ("Magnetic Tiles Set 60-Piece", 54.00, "build 3D shapes that click together"),
        ("Plush Bear Classic", 24.99, "extra-soft fur, safe from birth"),
        ("STEM Robot Kit", 79.00, "build and code a robot with a free app"),
        ("Jigsaw Puzzle 1000-Piece Coastline", 19.99, "thick board pieces with a poster guide"),
        ("Family Strategy Board Game", 39.00, "trade, build and race to ten points"),
        ("Art Easel Double-Sided", 59.99, "chalkboard, whiteboard and paper roll"),
        ("Train Set Wooden 50-Piece", 64.00, "bridges, tunnels and magnetic carriages"),
        ("Dollhouse Three-Storey", 119.00, "furnished rooms with working lights"),
        ("Kids' Scooter Three-Wheel", 44.99, "lean-to-steer with light-up wheels"),
        ("Play Kitchen Set", 99.00, "realistic sounds and a working tap"),
        ("Card Game Party Pack", 14.99, "fast rounds for two to eight players"),
        ("Marble Run Deluxe", 42.00, "150 pieces with spirals and funnels"),
        ("Drone Mini for Beginners", 59.00, "altitude hold and one-key return"),
        ("Stuffed Dinosaur Large", 29.99, "60 cm of cuddly triceratops"),
        ("Science Experiment Kit", 34.00, "40 safe experiments in chemistry and physics"),
        ("Modelling Clay 24 Colours", 17.99, "air-dry clay with sculpting tools"),
        ("Musical Xylophone", 22.50, "tuned metal keys on a wooden frame"),
        ("Building Bricks Space Station", 89.99, "1100 pieces compatible with major brands"),
        ("Bath Toy Boat Set", 16.00, "floating boats that squirt and stack"),
        ("Kids' Walkie-Talkies", 27.99, "3 km range with a built-in torch"),
        ("Puzzle Cube Speed", 12.99, "smooth magnetic turning"),
        ("Toy Tool Bench", 49.00, "hammer, saw and 30 pegs"),
        ("Kite Rainbow Delta", 19.00, "easy-flying nylon with a 50 m line"),
    ]),
    "beauty": ("BEAU", [
        ("Hydrating Face Serum", 34.00, "hyaluronic acid and niacinamide"),
        ("Daily Mineral Sunscreen SPF 50", 22.00, "lightweight with no white cast"),
        ("Gentle Foaming Cleanser", 16.50, "pH-balanced and fragrance free"),
        ("Retinol Night Cream", 42.00, "encapsulated retinol for sensitive skin"),
        ("Vitamin C Brightening Serum", 38.00, "15% stabilised vitamin C"),
        ("Argan Oil Hair Mask", 24.99, "repairs dry and colour-treated hair"),
        ("Sulfate-Free Shampoo", 18.00, "gentle cleansing with botanical extracts"),
        ("Matte Lipstick Ruby", 19.00, "long-wear formula that does not dry lips"),
        ("Volumising Mascara", 17.50, "buildable volume without clumps"),
        ("Eyeshadow Palette Neutrals", 36.00, "twelve buttery matte and shimmer shades"),
        ("Ceramic Hair Dryer", 89.00, "ionic technology for faster, smoother drying"),
        ("Hair Straightener Titanium", 69.00, "adjustable heat up to 230 C"),
        ("Body Lotion Shea Butter", 14.99, "48-hour moisture"),
        ("Beard Grooming Kit", 44.00, "oil, balm, comb and scissors"),
        ("Electric Toothbrush Sonic", 79.99, "five modes and a two-minute timer"),
        ("Clay Detox Face Mask", 26.00, "kaolin and bentonite clays"),
        ("Eau de Parfum Citrus Grove", 68.00, "bergamot, neroli and cedar"),
        ("Nail Care Set", 29.00, "stainless tools in a travel case"),
        ("Jade Facial Roller", 21.99, "cooling massage that reduces puffiness"),
        ("Dry Shampoo Spray", 12.99, "refreshes hair between washes"),
        ("Tinted Moisturiser", 31.00, "sheer coverage with SPF 30"),
        ("Micellar Water 400 ml", 11.99, "removes make-up without rubbing"),
        ("Bath Salts Lavender", 18.50, "Epsom and Dead Sea salts"),
        ("Makeup Brush Set 12-Piece", 39.00, "soft vegan bristles with a roll case"),
        ("Hand Cream Trio", 24.00, "rose, almond and oat scents"),
    ]),
}

CATEGORY_LINES = {
    "electronics": "Backed by a two-year SecureCart warranty.",
    "home": "Designed to make everyday living more comfortable.",
    "kitchen": "Dishwasher-friendly parts make clean-up quick.",
    "outdoors": "Tested on trails in all four seasons.",
    "books": "Paperback edition, shipped in recyclable packaging.",
    "apparel": "Free returns within 60 days.",
    "toys": "Meets EN71 safety standards.",
    "beauty": "Dermatologist tested and cruelty free.",
}

# Lab fixtures: exactly 5 in stock (lab 1's "reserve more than is left" path), and a few low-stock rows.
STOCK_EXACTLY_5 = ("SC-ELEC-0003", "SC-KITC-0007", "SC-TOYS-0012", "SC-BOOK-0020")
LOW_STOCK = {"SC-ELEC-0010": 2, "SC-HOME-0015": 0, "SC-OUTD-0004": 3, "SC-APPA-0008": 8, "SC-BEAU-0011": 1}

FIRST_NAMES = [
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Mia", "Lucas", "Isabella", "Mateo",
    "Ava", "Ethan", "Charlotte", "James", "Harper", "Benjamin", "Aisha", "Hiroshi", "Priya", "Carlos", "Fatima",
    "Jonas", "Ingrid", "Mei", "Dmitri", "Zara", "Tomás", "Amara", "Luca", "Chloe", "Ravi", "Sofia", "Kwame",
]
LAST_NAMES = [
    "Smith", "Johnson", "Garcia", "Müller", "Rossi", "Nakamura", "Patel", "Kim", "Nguyen", "Silva", "Kowalski",
    "Andersen", "Okafor", "Dubois", "Hernández", "Chen", "Larsen", "Novak", "O'Brien", "Singh", "Haddad", "Costa",
    "Murphy", "Jensen", "Fischer", "Tanaka", "Alvarez", "Walker", "Mensah", "Ivanova",
]
CITIES = [
    ("Seattle", "United States"), ("Austin", "United States"), ("Chicago", "United States"), ("New York", "United States"),
    ("Toronto", "Canada"), ("Vancouver", "Canada"), ("London", "United Kingdom"), ("Manchester", "United Kingdom"),
    ("Dublin", "Ireland"), ("Berlin", "Germany"), ("Munich", "Germany"), ("Paris", "France"), ("Lyon", "France"),
    ("Madrid", "Spain"), ("Milan", "Italy"), ("Amsterdam", "Netherlands"), ("Stockholm", "Sweden"),
    ("Copenhagen", "Denmark"), ("Warsaw", "Poland"), ("Tokyo", "Japan"), ("Osaka", "Japan"), ("Seoul", "South Korea"),
    ("Singapore", "Singapore"), ("Sydney", "Australia"), ("Melbourne", "Australia"), ("Auckland", "New Zealand"),
    ("São Paulo", "Brazil"), ("Mexico City", "Mexico"), ("Bangalore", "India"), ("Lagos", "Nigeria"),
    ("Nairobi", "Kenya"), ("Cape Town", "South Africa"),
]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example"]


def _ascii(text: str) -> str:
    return text.translate(str.maketrans("üáé'", "uae ")).replace(" ", "").lower()


def products() -> list[dict]:
    rows = []
    start = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
    for index, (category, (code, items)) in enumerate(CATALOG.items()):
        for number, (name, price, feature) in enumerate(items, start=1):
            sku = f"SC-{code}-{number:04d}"
            rows.append({
                "sku": sku,
                "name": name,
                "category": category,
                "description": f"{name}: {feature}. {CATEGORY_LINES[category]}",
                "price_cents": round(price * 100),
                "image_url": f"https://images.securecart.example/products/{sku}.jpg",
                "created_at": (start + timedelta(days=number * 7 + index, hours=index)).isoformat(),
            })  # fmt: skip
    return rows


def customers(count: int = 150) -> list[dict]:
    rng = random.Random(20250601)
    rows, seen = [], set()
    while len(rows) < count:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{_ascii(first)}.{_ascii(last)}@{rng.choice(EMAIL_DOMAINS)}"
        if email in seen:
            continue
        seen.add(email)
        city, country = rng.choice(CITIES)
        rows.append({"id": len(rows) + 1, "email": email, "full_name": f"{first} {last}", "city": city, "country": country})
    return rows


def inventory(product_rows: list[dict]) -> list[dict]:
    rng = random.Random(20250602)
    rows = []
    for product in product_rows:
        sku = product["sku"]
        threshold = rng.choice((5, 10, 10, 15, 20))
        stock = rng.randint(threshold + 10, 250)
        if sku in STOCK_EXACTLY_5:
            stock, threshold = 5, 3
        elif sku in LOW_STOCK:
            stock, threshold = LOW_STOCK[sku], 10
        rows.append({"sku": sku, "stock": stock, "low_stock_threshold": threshold})
    return rows


def write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main(target: Path = HERE) -> None:
    product_rows = products()
    write(target / "products.csv", product_rows)
    write(target / "customers.csv", customers())
    write(target / "inventory.csv", inventory(product_rows))


if __name__ == "__main__":
    main()
