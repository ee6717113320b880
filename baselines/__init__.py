"""The paper's non-RL methods: AvgPooling, LSTM, their -G variants, SCSampler, the oracle."""
