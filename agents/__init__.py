"""Learning agents: AdaFrame, FrameGlimpse(-G), FastForward(-G) and SB3 adapters (to come)."""
