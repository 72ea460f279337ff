package testport

import "testing"

// FreeOffset puts every port in 20000-31999, free, and never hands the
// same port out twice.
func TestFreeOffset(t *testing.T) {
	ports := []int{9091, 6001, 8081, 9093}
	seen := map[int]bool{}
	for range 20 {
		offset := FreeOffset(t, ports...)
		for _, p := range ports {
			q := p + offset
			if q < 20000 || q > 31999 {
				t.Fatalf("offset %d puts %d at %d", offset, p, q)
			}
			if seen[q] {
				t.Fatalf("port %d handed out twice", q)
			}
			if !IsFree(q) {
				t.Fatalf("port %d in use", q)
			}
			seen[q] = true
		}
	}
}
