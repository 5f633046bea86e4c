"""The pure link model: what an impaired link does to each packet or chunk, with no I/O and no clock.

One implementation, two carriers: the impairment point's userspace proxy (:mod:`harness.drivers.netem`,
real sockets in real time) and the simulated links of :mod:`harness.sim` (simulated time) both feed
it. Nothing here imports asyncio, threading or sockets; every decision takes the time as an argument
and draws from a seeded :class:`random.Random`.

* :mod:`~harness.netmodel.params` -- link parameters in ``tc netem`` names and units, validated;
* :mod:`~harness.netmodel.syntax` -- ``tc netem`` strings to parameters;
* :mod:`~harness.netmodel.profiles` -- named profiles (``3g``, ``wifi-weak``...);
* :mod:`~harness.netmodel.model` -- delay, jitter, loss (Gilbert-Elliott), duplicate, corrupt, reorder, rate;
* :mod:`~harness.netmodel.link` -- one service's link state (both directions, epochs);
* :mod:`~harness.netmodel.stats` -- what a direction measured, per epoch.
"""
