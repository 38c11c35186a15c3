namespace Bench.LoadGen.Measurement;

/// <summary>
/// The phases of one load, by id, so that a receive loop finds the phase of a stamp without locking: the array is
/// replaced, never changed in place, when a phase is added.
/// </summary>
internal sealed class PhaseRegistry
{
    private readonly Lock _lock = new();
    private PhaseStats[] _phases = [];

    public PhaseStats Add(string name)
    {
        lock (_lock)
        {
            var phase = new PhaseStats(_phases.Length, name);
            _phases = [.. _phases, phase];
            return phase;
        }
    }

    public PhaseStats? Find(int id)
    {
        var phases = Volatile.Read(ref _phases);
        return (uint)id < (uint)phases.Length ? phases[id] : null;
    }
}
