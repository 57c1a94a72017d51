"""Time limits (时限): the working-day calendar with 调休, the stages that carry a clock,
the clocks of each case, the deadline scan, extensions and pauses, and the policy presets
that load a seed's level scheme. It announces missed and warned clocks through
:mod:`app.signals`; it never calls discipline or messaging code.
"""
