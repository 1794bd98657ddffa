public import MaxSim
