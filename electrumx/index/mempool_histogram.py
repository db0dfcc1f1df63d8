"""The compact fee histogram served by `mempool.get_fee_histogram`.

Computed as ElectrumX computes it (REFERENCE §1.9), so that clients see the
same bins from us as from the servers they already know.
"""

from math import floor


def fee_rate_histogram(fees_and_vsizes):
    """{fee rate: total vsize} with rates in sat/vB floored to 0.1.

    Flooring (never rounding up) keeps a transaction inside the bin whose
    lower bound its rate actually reaches.  The rate is `fee / vsize` first,
    then scaled, as ElectrumX does, so float edge cases land where theirs do.
    """
    histogram = {}
    for fee, vsize in fees_and_vsizes:
        rate = floor(10 * (fee / vsize)) / 10
        histogram[rate] = histogram.get(rate, 0) + vsize
    return histogram


def compact_fee_histogram(fees_and_vsizes, bin_size: float):
    """[[fee rate, vsize], ...] by decreasing rate: the protocol's compact histogram.

    Walking from the highest rate, vsizes accumulate until the running sum
    exceeds `bin_size`; that bin is emitted under the current (lowest) rate
    and the bin size grows by 10%, so the few top bins that matter for fee
    estimation stay fine while the long cheap tail stays short.  A single
    rate holding more than twice the bin size first flushes the partial bin
    before it, so a big lump never hides the rates just above it.  A last
    partial bin is not emitted.
    """
    compact = []
    cum_size = 0
    prev_rate = None
    for rate, size in sorted(fee_rate_histogram(fees_and_vsizes).items(), reverse=True):
        if size > 2 * bin_size and cum_size > 0:
            compact.append([prev_rate, cum_size])
            cum_size = 0
            bin_size *= 1.1
        cum_size += size
        if cum_size > bin_size:
            compact.append([rate, cum_size])
            cum_size = 0
            bin_size *= 1.1
        prev_rate = rate
    return compact
