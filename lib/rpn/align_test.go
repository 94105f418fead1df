package rpn

// selAlignNearTies returns, for each wanted row k, the index of the got row to
// compare with it. The golden README allows neighbours whose scores differ by
// less than the score tolerance to come out swapped, so a got row may stand
// in for a wanted row when its score is within tol and same(g, k) holds.
// Rows that find no partner keep their own position, so the later element
// check reports them.
func selAlignNearTies(gotScores, wantScores []float32, tol float32, same func(g, k int) bool) []int {
	perm := make([]int, len(wantScores))
	used := make([]bool, len(gotScores))
	for k, ws := range wantScores {
		perm[k] = -1
		for g, gs := range gotScores {
			if !used[g] && gs-ws <= tol && ws-gs <= tol && same(g, k) {
				perm[k], used[g] = g, true
				break
			}
		}
	}
	for k := range perm {
		if perm[k] < 0 {
			perm[k] = k
		}
	}
	return perm
}
