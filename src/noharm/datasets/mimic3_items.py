"""The MIMIC-III v1.4 item ids behind every feature of the mortality cohort.

Each concept lists its item ids in both ICU systems (CareVue ids < 220000,
MetaVision ids >= 220000), the table they live in, a unit conversion
``value * scale + shift`` into the concept's unit, and a plausible range: values
outside it (typing errors, placeholder 0s) are dropped before aggregation.  The
ids follow the public MIMIC-III documentation (D_ITEMS / D_LABITEMS) and the
concept definitions of the MIT-LCP mimic-code repository (first-day vitals and
labs, urine output); the ranges are wide physiological bounds.
"""
from __future__ import annotations

from dataclasses import dataclass

F_TO_C = (5 / 9, -32 * 5 / 9)


@dataclass(frozen=True)
class Concept:
    """One measured quantity: where it is recorded and how to read it."""

    name: str
    table: str                       # CHARTEVENTS, LABEVENTS or OUTPUTEVENTS
    itemids: tuple[int, ...]
    low: float
    high: float
    unit: str
    converted: tuple[int, ...] = ()  # item ids recorded in Fahrenheit
    total: bool = False              # also report the 48-hour sum (urine output)


CONCEPTS: tuple[Concept, ...] = (
    # vitals (CHARTEVENTS)
    Concept("heart_rate", "CHARTEVENTS", (211, 220045), 0, 300, "bpm"),
    Concept("sbp", "CHARTEVENTS", (51, 442, 455, 6701, 220050, 220179), 0, 400, "mmHg"),
    Concept("dbp", "CHARTEVENTS", (8368, 8440, 8441, 8555, 220051, 220180), 0, 300, "mmHg"),
    Concept("mbp", "CHARTEVENTS", (52, 443, 456, 6702, 220052, 220181, 225312), 0, 300,
            "mmHg"),
    Concept("resp_rate", "CHARTEVENTS", (615, 618, 220210, 224690), 0, 70, "/min"),
    Concept("temperature", "CHARTEVENTS", (676, 678, 223761, 223762), 25, 45, "degC",
            converted=(678, 223761)),
    Concept("spo2", "CHARTEVENTS", (646, 220277), 0, 100, "%"),
    Concept("glucose_chart", "CHARTEVENTS", (807, 811, 1529, 3744, 3745, 220621, 225664,
                                             226537), 0, 2000, "mg/dL"),
    Concept("gcs_total", "CHARTEVENTS", (198,), 3, 15, "points"),
    Concept("gcs_eye", "CHARTEVENTS", (184, 220739), 1, 4, "points"),
    Concept("gcs_verbal", "CHARTEVENTS", (723, 223900), 1, 5, "points"),
    Concept("gcs_motor", "CHARTEVENTS", (454, 223901), 1, 6, "points"),
    Concept("fio2", "CHARTEVENTS", (3420, 223835), 20, 100, "%"),
    Concept("weight", "CHARTEVENTS", (762, 763, 224639, 226512), 10, 400, "kg"),
    # labs (LABEVENTS)
    Concept("glucose", "LABEVENTS", (50931, 50809), 0, 2000, "mg/dL"),
    Concept("creatinine", "LABEVENTS", (50912,), 0, 150, "mg/dL"),
    Concept("bun", "LABEVENTS", (51006,), 0, 300, "mg/dL"),
    Concept("sodium", "LABEVENTS", (50983, 50824), 50, 225, "mEq/L"),
    Concept("potassium", "LABEVENTS", (50971, 50822), 0, 30, "mEq/L"),
    Concept("chloride", "LABEVENTS", (50902, 50806), 50, 175, "mEq/L"),
    Concept("bicarbonate", "LABEVENTS", (50882,), 0, 60, "mEq/L"),
    Concept("anion_gap", "LABEVENTS", (50868,), 0, 60, "mEq/L"),
    Concept("hematocrit", "LABEVENTS", (51221, 50810), 0, 100, "%"),
    Concept("hemoglobin", "LABEVENTS", (51222, 50811), 0, 50, "g/dL"),
    Concept("wbc", "LABEVENTS", (51300, 51301), 0, 1000, "K/uL"),
    Concept("platelets", "LABEVENTS", (51265,), 0, 10000, "K/uL"),
    Concept("lactate", "LABEVENTS", (50813,), 0, 50, "mmol/L"),
    Concept("albumin", "LABEVENTS", (50862,), 0, 10, "g/dL"),
    Concept("bilirubin", "LABEVENTS", (50885,), 0, 150, "mg/dL"),
    Concept("calcium", "LABEVENTS", (50893,), 0, 30, "mg/dL"),
    Concept("magnesium", "LABEVENTS", (50960,), 0, 20, "mg/dL"),
    Concept("phosphate", "LABEVENTS", (50970,), 0, 30, "mg/dL"),
    Concept("inr", "LABEVENTS", (51237,), 0, 50, "ratio"),
    Concept("pt", "LABEVENTS", (51274,), 0, 150, "s"),
    Concept("ptt", "LABEVENTS", (51275,), 0, 150, "s"),
    Concept("ph", "LABEVENTS", (50820,), 6.5, 8.0, "pH"),
    Concept("pco2", "LABEVENTS", (50818,), 0, 200, "mmHg"),
    Concept("po2", "LABEVENTS", (50821,), 0, 800, "mmHg"),
    Concept("base_excess", "LABEVENTS", (50802,), -50, 50, "mEq/L"),
    # urine output (OUTPUTEVENTS)
    Concept("urine_output", "OUTPUTEVENTS",
            (40055, 40056, 40057, 40069, 40085, 40086, 40094, 40096, 40405, 40428, 40473,
             40651, 40715, 43175, 226557, 226558, 226559, 226560, 226561, 226563, 226564,
             226565, 226567, 226584), 0, 5000, "mL", total=True),
)

STATS = ("count", "mean", "min", "max", "sd", "first", "last", "slope")
