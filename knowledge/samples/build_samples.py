"""Builds the binary sample manuals of the Lumen Brew 3 (PDF with bookmarks, DOCX with heading
styles) from the text below. Deterministic: ``python knowledge/samples/build_samples.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent / "lumen-brew3"

# (level, heading, paragraphs); a paragraph that is a list of rows becomes a table, one starting
# with "1." a numbered step.
MANUAL: list[tuple[int, str, list[str | list[list[str]]]]] = [
    (0, "Getting started", [
        "The Lumen Brew 3 (model LB3-220) is a bean-to-cup coffee machine with a 1.8 litre water tank "
        "and a 250 g bean hopper. Read the safety notes before first use.",
    ]),
    (1, "Safety notes", [
        "Never immerse the machine in water. The brew unit reaches 95 degrees Celsius. "
        "Keep children away from the steam wand.",
    ]),
    (1, "First use", [
        "1. Rinse the water tank and fill it with fresh cold water up to the MAX line.",
        "2. Fill the bean hopper with whole beans.",
        "3. Press the power button; the machine heats up for about 40 seconds.",
        "4. Run two rinse cycles by holding the Cup button for 3 seconds.",
    ]),
    (0, "Making drinks", [
        "Choose a drink on the touch panel. Espresso uses 40 ml of water, lungo 110 ml and "
        "americano 180 ml. Turn the strength dial to set 1 to 5 beans.",
    ]),
    (1, "Milk drinks", [
        "Attach the milk tube to the steam wand and dip the other end in cold milk. Select cappuccino "
        "or latte. Clean the wand after every milk drink by selecting Steam Clean.",
    ]),
    (1, "Grind settings", [
        "The grinder has 12 settings. Setting 1 is the finest. Change the setting only while the "
        "grinder is running, otherwise the burrs can jam.",
    ]),
    (0, "Care and maintenance", [
        "Empty the grounds container when the panel shows the bin icon, at the latest after 12 drinks.",
    ]),
    (1, "Descaling", [
        "The machine asks for descaling every 300 cups or 3 months, whichever comes first. "
        "Use only Lumen DescalePro liquid.",
        "1. Empty the drip tray and remove the water filter.",
        "2. Pour 250 ml of DescalePro into the tank and fill with water to the MAX line.",
        "3. Hold the Steam and Cup buttons together for 5 seconds to start the 25-minute program.",
        "4. Rinse the tank and run the rinse cycle twice before brewing again.",
    ]),
    (1, "Cleaning the brew unit", [
        "Remove the brew unit once a week by pressing the red PUSH lever. Rinse it under lukewarm "
        "water without soap and let it dry before putting it back.",
    ]),
    (0, "Troubleshooting", [
        [["Code", "Cause", "Fix"],
         ["E01", "Water tank empty or not seated", "Fill the tank and push it in until it clicks"],
         ["E07", "Brew unit missing or blocked", "Remove, rinse and refit the brew unit"],
         ["E15", "Grinder jammed", "Switch off, empty the hopper and run a grind at setting 6"],
         ["E22", "Boiler overheated", "Switch off for 30 minutes, then descale"]],
        "If the coffee is cold, preheat the cups and run the descaling program.",
    ]),
    (0, "Technical data", [
        [["Property", "Value"], ["Power", "1450 W, 220-240 V"], ["Pump pressure", "15 bar"],
         ["Weight", "8.2 kg"], ["Standby power", "0.3 W after 15 minutes"]],
    ]),
]


def build_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))
    pdf.set_title("Lumen Brew 3 Owner's Manual")
    pdf.set_author("Lumen Appliances")
    pdf.set_font("Helvetica", size=11)
    for level, heading, paragraphs in MANUAL:
        if level == 0:
            pdf.add_page()
        pdf.start_section(heading, level=level)
        pdf.set_font("Helvetica", style="B", size=16 if level == 0 else 13)
        pdf.multi_cell(0, 9, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            if isinstance(paragraph, list):
                with pdf.table() as table:
                    for row in paragraph:
                        cells = table.row()
                        for cell in row:
                            cells.cell(cell)
            else:
                pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    pdf.output(str(path))


def build_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Lumen Brew 3 Quick Start"
    document.core_properties.created = datetime(2026, 1, 1)
    document.core_properties.modified = datetime(2026, 1, 1)
    document.add_heading("Lumen Brew 3 Quick Start", level=0)
    document.add_heading("Unpacking", level=1)
    document.add_paragraph("Remove the orange transport lock under the drip tray before switching on.")
    document.add_heading("Your first espresso", level=1)
    for step in ("Fill the tank with cold water.", "Fill the hopper with beans.",
                 "Press the espresso symbol on the touch panel."):
        document.add_paragraph(step, style="List Number")
    document.add_heading("Buttons", level=2)
    table = document.add_table(rows=3, cols=2)
    for row, (button, action) in zip(table.rows, [("Button", "Action"), ("Cup", "Brew or rinse"),
                                                  ("Steam", "Milk froth and steam clean")], strict=True):
        row.cells[0].text, row.cells[1].text = button, action
    document.save(str(path))


if __name__ == "__main__":
    HERE.mkdir(parents=True, exist_ok=True)
    build_pdf(HERE / "manual.pdf")
    build_docx(HERE / "quick-start.docx")
    print(f"wrote {HERE / 'manual.pdf'} and {HERE / 'quick-start.docx'}")
