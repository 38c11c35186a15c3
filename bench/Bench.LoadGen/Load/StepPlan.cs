namespace Bench.LoadGen.Load;

/// <summary>One step of a stepped load: an offered rate, a warm-up at that rate, then the measured window.</summary>
public sealed record StepPlan(double Rate, TimeSpan Warmup, TimeSpan Window)
{
    public TimeSpan Duration => Warmup + Window;
}
