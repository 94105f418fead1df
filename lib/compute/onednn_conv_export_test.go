package compute

// SetConvChoice makes ConvOneDNN behave as under DETLAB_CONV=env until
// the returned function restores the previous choice (for tests and
// benchmarks of other packages; not safe during concurrent calls).
func SetConvChoice(env string) (restore func()) {
	prev := convChosen
	c := chooseConv(env)
	convChosen = func() convChoice { return c }
	return func() { convChosen = prev }
}
