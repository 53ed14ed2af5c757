package main

// interruptions will play steps 3 and 4, a Spot interruption notice and a
// rebalance recommendation, through the interruption package's handler once
// it is in the repository; until then the replay skips them and says so.
func (s *sim) interruptions() error {
	s.step("3-4. Spot interruption and rebalance recommendation: not replayed yet (the interruption handler has not landed)")
	return nil
}
