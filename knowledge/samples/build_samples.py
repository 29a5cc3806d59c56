"""Builds the binary sample manuals of the Lumen Brew 3 coffee machine from the text below: an owner's
manual PDF whose headings are PDF outline entries (bookmarks) and a quick-start DOCX with real heading
styles. Deterministic (fixed dates, fixed zip timestamps): rerunning gives identical bytes.

Run: ``python knowledge/samples/build_samples.py``. Needs ``fpdf2`` and ``python-docx``.
All text is original and written for this project; it may be used freely."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

HERE = Path(__file__).parent / "lumen-brew3"
FIXED_DATE = datetime(2026, 1, 1, tzinfo=UTC)

# A block is a paragraph, numbered steps, bullets or a table (first row is the header row).
Block = (tuple[Literal["p"], str] | tuple[Literal["steps", "bullets"], list[str]]
         | tuple[Literal["table"], list[list[str]]])
# (level, heading, blocks): level 0 is a chapter (starts a new page), level 1 a section of it.
Section = tuple[int, str, list[Block]]

MANUAL_TITLE = "Lumen Brew 3 Owner's Manual"
MANUAL: list[Section] = [
    (0, "Getting started", [
        ("p", "The Lumen Brew 3 (model LB3-220) is a fully automatic bean-to-cup coffee machine with a "
              "1.8 litre removable water tank, a 250 g bean hopper, a ceramic conical grinder and a steam "
              "wand for milk drinks. This manual applies to machines with firmware 1.3 or later; drinks added "
              "by later updates are described in the release notes. Read the safety notes before first use "
              "and keep this manual for future reference."),
    ]),
    (1, "Safety notes", [
        ("bullets", [
            "Connect the machine only to an earthed socket with a voltage of 220-240 V.",
            "Never immerse the machine, the power cord or the plug in water or any other liquid.",
            "The brew unit reaches 95 °C and the steam wand up to 130 °C. Keep children away from the "
            "machine while it is in use and do not touch the steam wand during or just after frothing.",
            "Once the machine has been used, do not store it anywhere the temperature can fall below 0 °C. "
            "Water left in the system can freeze and damage the boiler.",
            "Unplug the machine before you clean it, and when you will not use it for more than two weeks.",
        ]),
    ]),
    (1, "Parts of the machine", [
        ("table", [
            ["Part", "Where to find it"],
            ["Water tank (1.8 l)", "Back left; lift it out by the handle"],
            ["Bean hopper (250 g)", "Top, under the lid with the aroma seal"],
            ["Grind dial", "Inside the bean hopper, 12 positions"],
            ["Bypass flap", "Next to the bean hopper, for one scoop of ground coffee"],
            ["Touch panel", "Front, above the coffee spout"],
            ["Coffee spout", "Front, height-adjustable from 75 to 140 mm"],
            ["Steam wand", "Right side, with the detachable milk tube"],
            ["Drip tray", "Bottom front; a red float rises when it is full"],
            ["Grounds container", "Behind the drip tray, holds 12 used coffee pucks"],
            ["Brew unit", "Behind the service door on the right side"],
        ]),
    ]),
    (1, "First use", [
        ("steps", [
            "Place the machine on a flat, stable surface and remove all packaging material.",
            "Rinse the water tank and fill it with fresh cold water up to the MAX line.",
            "Fill the bean hopper with whole roasted beans and close the lid.",
            "Press the power button. The machine heats up for about 40 seconds and rinses automatically.",
            "Set the water hardness (see Water hardness in the chapter Care and maintenance).",
            "Run two rinse cycles by holding the Cup button for 3 seconds each time.",
        ]),
        ("p", "The grinder needs a few cycles to settle. The first five coffees may taste weak; this is "
              "normal and does not indicate a fault."),
    ]),
    (0, "Making drinks", [
        ("p", "Place a cup under the coffee spout and touch a drink symbol on the touch panel. The "
              "machine grinds, brews and stops by itself. Each drink has a default volume that you can "
              "change under Menu > Drink settings > Volume."),
        ("table", [
            ["Drink", "Default volume", "Adjustable range"],
            ["Espresso", "40 ml", "25-60 ml"],
            ["Lungo", "110 ml", "80-180 ml"],
            ["Americano", "180 ml (40 ml coffee + 140 ml hot water)", "120-300 ml"],
            ["Cappuccino", "40 ml coffee + 100 ml milk foam", "milk 60-150 ml"],
            ["Latte macchiato", "40 ml coffee + 220 ml milk", "milk 150-300 ml"],
            ["Hot water", "200 ml", "50-400 ml"],
        ]),
    ]),
    (1, "Strength and temperature", [
        ("p", "Turn the strength dial to choose from 1 to 5 beans; one bean uses 7 g of coffee and five "
              "beans 12 g. The brewing temperature has three levels: Low (88 °C), Medium (92 °C, the "
              "factory setting) and High (95 °C). Change it under Menu > Drink settings > Temperature."),
        ("p", "To brew two espressos or two lungos at once, touch the drink symbol twice within one "
              "second. The machine grinds twice and fills both cups. Two cups at once are not possible "
              "for milk drinks or americano."),
    ]),
    (1, "Milk drinks", [
        ("steps", [
            "Attach the milk tube to the steam wand and dip the other end in cold milk (4-6 °C).",
            "Select Cappuccino or Latte macchiato. The machine froths the milk first and then brews.",
            "After every milk drink the panel asks for Steam Clean. Place a cup under the wand and "
            "confirm; the machine blows steam through the milk system for 15 seconds.",
        ]),
        ("p", "Once a week, clean the milk system with one Lumen MilkClean tablet dissolved in 250 ml of "
              "warm water: put the milk tube in the solution and select Menu > Care > Milk system clean."),
    ]),
    (1, "Grind settings", [
        ("p", "The grinder has 12 settings. Setting 1 is the finest and gives a stronger, more intense "
              "coffee; setting 12 is the coarsest. The factory setting is 6. Change the setting only "
              "while the grinder is running, otherwise the burrs can jam. Adjust one step at a time and "
              "taste three coffees before you adjust again."),
    ]),
    (1, "Personal profiles", [
        ("p", "The Brew 3 stores up to four personal profiles, P1 to P4. A profile remembers the volume, "
              "strength and temperature of each drink. To save the current settings, touch and hold a "
              "profile symbol for 3 seconds until it lights up green. Touch a profile once to select it "
              "before choosing a drink. Profiles can also be named in the Lumen Home app."),
    ]),
    (0, "Care and maintenance", [
        ("p", "Regular care keeps the coffee tasting good and prevents most error messages. The touch "
              "panel reminds you when maintenance is due."),
    ]),
    (1, "Descaling", [
        ("p", "Limescale builds up inside the machine with every cup. The machine asks for descaling every "
              "300 cups or 3 months, whichever comes first; the orange descaling symbol lights up. Use only "
              "Lumen DescalePro liquid. Vinegar and citric acid damage the seals and are not covered by the "
              "warranty."),
        ("steps", [
            "Empty the drip tray and remove the water filter from the tank, if one is fitted.",
            "Pour 250 ml of DescalePro into the tank and fill with water to the MAX line.",
            "Place a container of at least 1 litre under the coffee spout and the steam wand.",
            "Hold the Steam and Cup buttons together for 5 seconds to start the 25-minute program.",
            "When the panel asks, rinse the tank, fill it with fresh water and run the rinse cycle twice.",
        ]),
        ("p", "Do not interrupt the program. If the power fails, the program resumes where it stopped."),
    ]),
    (1, "Water hardness", [
        ("p", "Set the hardness of your tap water so that the descaling reminder appears at the right time. "
              "Dip the test strip from the box in tap water for 1 second and count the red squares after "
              "one minute. Enter the result under Menu > Settings > Water hardness. The factory setting is "
              "level 3."),
        ("table", [
            ["Red squares", "Hardness level", "Descaling reminder after"],
            ["0-1", "1 (soft)", "600 cups"],
            ["2", "2 (medium)", "450 cups"],
            ["3", "3 (hard)", "300 cups"],
            ["4", "4 (very hard)", "150 cups"],
        ]),
    ]),
    (1, "Cleaning the brew unit", [
        ("p", "Remove the brew unit once a week: switch the machine off, open the service door on the "
              "right side and press the red PUSH lever while pulling the unit out by its handle. Rinse it "
              "under lukewarm running water without soap or detergent and let it dry for at least one "
              "hour before putting it back. Every 500 cups, lubricate the guide rails with a thin film of "
              "Lumen brew unit grease. The brew unit is not dishwasher-safe."),
    ]),
    (1, "Daily cleaning", [
        ("bullets", [
            "Empty the grounds container when the bin symbol lights up, at the latest after 12 drinks.",
            "Empty the drip tray when its red float pops up.",
            "Rinse the water tank every day and refill it with fresh water.",
            "The drip tray, the grounds container and the milk tube may go in the top rack of a dishwasher.",
        ]),
    ]),
    (0, "Troubleshooting", [
        ("p", "If an error code appears on the touch panel, first switch the machine off and on again. If "
              "the code stays, look it up below."),
    ]),
    (1, "Error codes", [
        ("table", [
            ["Code", "Cause", "Fix"],
            ["E01", "Water tank empty or not seated", "Fill the tank and push it in until it clicks"],
            ["E04", "Drip tray or grounds container missing", "Empty both and slide them fully back in"],
            ["E07", "Brew unit missing or blocked", "Remove, rinse and refit the brew unit"],
            ["E15", "Grinder jammed, for example by a small stone or oily beans",
             "Switch off, empty the hopper, vacuum the grinder and run a grind at setting 6"],
            ["E22", "Boiler overheated", "Switch off for 30 minutes, then descale"],
            ["E29", "Milk system blocked", "Clean the milk system with a MilkClean tablet"],
            ["E40", "Internal communication error", "Unplug for 60 seconds; if it returns, contact service"],
        ]),
    ]),
    (1, "Coffee quality problems", [
        ("table", [
            ["Symptom", "Cause", "Fix"],
            ["Coffee is not hot enough", "Cold cups or limescale in the boiler",
             "Preheat the cups with hot water, set the temperature to High, descale"],
            ["Coffee is watery", "Grind too coarse or strength too low",
             "Choose a finer grind setting and more beans"],
            ["Coffee runs out drop by drop", "Grind too fine", "Choose a coarser grind setting"],
            ["Milk does not foam", "Milk too warm or milk tube blocked",
             "Use milk straight from the fridge and clean the milk system"],
            ["Water under the machine", "Drip tray overfull", "Empty the drip tray more often"],
        ]),
    ]),
    (1, "Restoring default settings", [
        ("p", "To return all drink volumes, profiles, the water hardness and the language to their "
              "original values, select Menu > Settings > Restore defaults and confirm with the Cup button. "
              "If the menu cannot be opened, hold the Power and Hot water buttons together for 12 seconds "
              "while the machine is on. The cup counter and the descaling counter are not reset."),
    ]),
    (0, "Technical data", [
        ("table", [
            ["Property", "Value"],
            ["Model", "LB3-220"],
            ["Power supply", "220-240 V, 50/60 Hz"],
            ["Power", "1450 W"],
            ["Pump pressure", "15 bar"],
            ["Water tank", "1.8 l"],
            ["Bean hopper", "250 g"],
            ["Grounds container", "12 portions"],
            ["Dimensions (W x H x D)", "24 x 36 x 43 cm"],
            ["Weight", "8.2 kg"],
            ["Power cord length", "1.1 m"],
            ["Standby power", "0.3 W after 15 minutes"],
        ]),
    ]),
    (1, "Energy saving", [
        ("p", "The machine switches to standby 15 minutes after the last drink. Change the time under "
              "Menu > Settings > Auto-off to 30 minutes, 1 hour or 3 hours. In Eco mode (Menu > Settings > "
              "Eco) the boiler heats only when you choose a drink, which saves about 20% energy; the first "
              "coffee then takes 25 seconds longer."),
    ]),
    (1, "Warranty and service", [
        ("p", "Lumen Appliances guarantees the Lumen Brew 3 for 2 years from the date of purchase. The "
              "ceramic grinder burrs are guaranteed for 5 years. The guarantee does not cover damage caused "
              "by limescale when descaling reminders were ignored, the use of descalers other than "
              "DescalePro, or commercial use of more than 30 cups a day."),
        ("p", "For repairs, call the Lumen service line on 0800 586 3600 (Monday to Saturday, 8:00 to "
              "18:00). A courier collects the machine from your home; repairs take about 10 working days, "
              "and a loan machine is available on request during the guarantee period."),
    ]),
    (1, "Disposal", [
        ("p", "Do not dispose of the machine with household waste. Empty the water tank and the drip tray "
              "and take the machine to a municipal collection point for electrical appliances. The "
              "packaging is made of recyclable cardboard and paper."),
    ]),
]


def build_pdf(path: Path) -> None:
    """The owner's manual: every heading is an outline entry (chapters level 0, sections level 1)."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(MANUAL_TITLE)
    pdf.set_author("Lumen Appliances")
    pdf.set_subject("Lumen Brew 3 (LB3-220) bean-to-cup coffee machine")
    pdf.set_creator("knowledge/samples/build_samples.py")
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=18)
    body, line = 10, 5.0
    for level, heading, blocks in MANUAL:
        if level == 0:
            pdf.add_page()
        else:
            pdf.ln(2)
        pdf.start_section(heading, level=level)
        pdf.set_font("Helvetica", style="B", size=16 if level == 0 else 12.5)
        pdf.multi_cell(0, 8 if level == 0 else 7, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=body)
        for kind, content in blocks:
            if kind == "p":
                assert isinstance(content, str)
                pdf.multi_cell(0, line, content, new_x="LMARGIN", new_y="NEXT")
            elif kind in ("steps", "bullets"):
                for number, item in enumerate(content, start=1):
                    marker = f"{number}." if kind == "steps" else "-"
                    pdf.set_x(pdf.l_margin + 2)
                    pdf.cell(7, line, marker)
                    pdf.multi_cell(0, line, str(item), new_x="LMARGIN", new_y="NEXT")
            else:
                with pdf.table(text_align="LEFT", line_height=line, padding=1.2,
                               headings_style=FontFace(emphasis="BOLD", fill_color=(230, 230, 230))) as table:
                    for row in content:
                        cells = table.row()
                        for cell in row:
                            cells.cell(str(cell))
            pdf.ln(1.5)
    pdf.output(str(path))


QUICK_START_TITLE = "Lumen Brew 3 Quick Start"


def build_docx(path: Path) -> None:
    """The quick-start guide: "Heading 1"/"Heading 2" styles, numbered steps and tables."""
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = QUICK_START_TITLE
    props.author = props.last_modified_by = "Lumen Appliances"
    props.created = props.modified = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1

    def numbered(*steps: str) -> None:
        for step in steps:
            document.add_paragraph(step, style="List Number")

    def table(rows: list[tuple[str, ...]]) -> None:
        grid = document.add_table(rows=len(rows), cols=len(rows[0]))
        grid.style = "Table Grid"
        for row, values in zip(grid.rows, rows, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value

    document.add_heading(QUICK_START_TITLE, level=0)
    document.add_paragraph("Model LB3-220. From the box to your first espresso in about ten minutes. "
                           "The owner's manual has the full instructions and safety notes.")

    document.add_heading("Unpacking", level=1)
    document.add_paragraph("Lift the machine out of the box by its sides, never by the water tank or the "
                           "drip tray. Remove the orange transport lock under the drip tray before "
                           "switching on; the machine will not start while it is fitted. Keep the box for "
                           "transport: the machine must not be sent for repair without it.")
    document.add_paragraph("In the box you will also find the milk tube, a measuring scoop for ground "
                           "coffee, a water hardness test strip, one AquaClean water filter and a "
                           "100 ml sample bottle of DescalePro.")

    document.add_heading("Setting up", level=1)
    numbered("Place the machine on a flat, heat-resistant surface with at least 10 cm of space behind "
             "it and 15 cm above it for the hopper lid.",
             "Soak the AquaClean filter in cold water for 60 seconds, then screw it into the socket at "
             "the bottom of the water tank.",
             "Fill the tank with cold water up to the MAX line and slide it back in.",
             "Pour whole beans into the hopper; do not fill above the rim, about 250 g.",
             "Plug in the machine and press the power button. On first start the panel asks for the "
             "language; swipe and tap to choose.")

    document.add_heading("Your first espresso", level=1)
    numbered("Wait until the espresso symbol stops blinking (about 40 seconds).",
             "Pull the coffee spout down so that it is just above your cup.",
             "Touch the espresso symbol on the touch panel.")
    document.add_paragraph("Too strong or too weak? Turn the strength dial; one bean is the mildest and "
                           "five beans the strongest.")
    document.add_heading("Buttons", level=2)
    table([("Button", "Action", "Hold"),
           ("Power", "Switch on or to standby", "-"),
           ("Cup", "Brew or rinse", "3 s: rinse cycle"),
           ("Steam", "Milk froth and steam clean", "8 s: Bluetooth pairing"),
           ("Hot water", "Dispense hot water", "-"),
           ("Menu", "Open settings and care programs", "3 s: lock the panel for cleaning")])
    document.add_heading("Panel symbols", level=2)
    table([("Symbol", "Meaning"),
           ("Blinking water drop", "Water tank empty or missing"),
           ("Bin", "Empty the grounds container"),
           ("Orange kettle with drops", "Descaling is due"),
           ("Filter with arrow", "Replace the AquaClean filter"),
           ("Blinking phone", "Ready to pair with the Lumen Home app"),
           ("Padlock", "Panel locked for cleaning; hold Menu 3 s to unlock")])

    document.add_heading("Pairing with the Lumen Home app", level=1)
    numbered("Install the Lumen Home app and switch on Bluetooth on your phone.",
             "Hold the Steam button for 8 seconds until the panel shows a blinking phone icon.",
             "In the app, tap Add machine and select Lumen Brew 3.",
             "Enter the four-digit code that the machine shows on its panel.",
             "Keep your phone within 10 m of the machine until the app says Connected.")

    document.add_heading("Need help?", level=1)
    document.add_paragraph("Videos for every care program are in the Lumen Home app under Machine > "
                           "How-to. Our service line is open Monday to Saturday, 8:00 to 18:00, on "
                           "0800 586 3600. Please have the serial number ready; it is on the label behind "
                           "the water tank and starts with LB3.")

    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(_normalise_zip(buffer.getvalue()))


def _normalise_zip(data: bytes) -> bytes:
    """Rewrites a zip with fixed timestamps so the same content gives the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    build_pdf(HERE / "manual.pdf")
    build_docx(HERE / "quick-start.docx")
    print(f"wrote {HERE / 'manual.pdf'} and {HERE / 'quick-start.docx'}")


if __name__ == "__main__":
    main()
