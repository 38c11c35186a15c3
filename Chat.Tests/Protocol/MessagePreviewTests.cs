using Chat.Core.Handlers;
using Chat.Core.Protocol;

namespace Chat.Tests.Protocol;

public sealed class MessagePreviewTests
{
    [TestCase("")]
    [TestCase("hi")]
    [TestCase("😀")]
    public void Short_content_is_its_own_preview(string content)
    {
        Assert.That(MessagePreview.Of(content), Is.EqualTo(content));
    }

    [Test]
    public void Content_of_exactly_100_characters_is_unchanged()
    {
        var content = new string('a', 100);

        Assert.That(MessagePreview.Of(content), Is.SameAs(content));
    }

    [Test]
    public void Content_of_50_emoji_fits_in_100_utf16_units_and_is_unchanged()
    {
        var content = string.Concat(Enumerable.Repeat("😀", 50));

        Assert.That(MessagePreview.Of(content), Is.EqualTo(content));
    }

    [Test]
    public void Content_of_101_characters_becomes_its_first_97_and_an_ellipsis()
    {
        var content = string.Concat(Enumerable.Range(0, 101).Select(i => (char)('a' + i % 26)));

        var preview = MessagePreview.Of(content);

        Assert.That(preview, Is.EqualTo(content[..97] + "..."));
        Assert.That(preview, Has.Length.EqualTo(100));
    }

    [Test]
    public void Long_content_is_cut_to_100_characters()
    {
        var preview = MessagePreview.Of(new string('x', 4000));

        Assert.That(preview, Is.EqualTo(new string('x', 97) + "..."));
    }

    [Test]
    public void A_surrogate_pair_straddling_the_cut_is_left_out_whole()
    {
        // The emoji's high half is at index 96 and its low half at 97, where the cut falls.
        var content = new string('a', 96) + "😀" + new string('b', 20);

        var preview = MessagePreview.Of(content);

        Assert.That(preview, Is.EqualTo(new string('a', 96) + "..."));
        Assert.That(FrameReader.IsValidText(preview), Is.True);
    }

    [Test]
    public void A_surrogate_pair_just_before_the_cut_is_kept_whole()
    {
        var content = new string('a', 95) + "😀" + new string('b', 20);

        var preview = MessagePreview.Of(content);

        Assert.That(preview, Is.EqualTo(new string('a', 95) + "😀..."));
    }

    [Test]
    public void No_cut_position_ever_splits_a_surrogate_pair_or_exceeds_100_characters()
    {
        for (var offset = 0; offset < 4; offset++)
        {
            var content = new string('a', offset) + string.Concat(Enumerable.Repeat("😀", 80));

            var preview = MessagePreview.Of(content);

            Assert.That(FrameReader.IsValidText(preview), Is.True, $"offset {offset}");
            Assert.That(preview.Length, Is.LessThanOrEqualTo(MessagePreview.MaxLength), $"offset {offset}");
            Assert.That(preview, Does.EndWith("..."), $"offset {offset}");
            Assert.That(content, Does.StartWith(preview[..^3]), $"offset {offset}");
        }
    }
}
