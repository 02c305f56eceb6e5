// Package synth generates realistic synthetic case records for demos, tests
// and benchmarks (`ctfed gen`). Cases follow the profile of one kind of
// organisation in one region (a South-East Asia NGO, an Eastern Europe
// government agency, a Gulf-destination mission, a West Africa NGO) and are
// skewed like real caseloads: a handful of corridors, mostly women, sexual
// exploitation and forced labour dominant, ages concentrated 18–38, several
// means of control per case, some values known only as a band or not at all.
// Output is deterministic for a seed, profile and count.
//
// Identity fields are filled with clearly fake values (full names starting
// "Fakename", documents "FAKE-...", phones "+000 ...", addresses "FAKE ...",
// e-mails at example.invalid) so that tests can look for them where they must
// never appear.
//
// synth imports node and node/casefile only.
package synth
