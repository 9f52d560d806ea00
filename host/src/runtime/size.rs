//! What a guest's answer costs against its level's output quota: the bytes
//! it takes on the wire to the client, counted for everything that goes
//! there (every content block, even an empty one, binary data as base64,
//! structured content, resource contents, prompt messages).

use crate::wit::{
    Completion, ContentBlock, PromptResult, ResourceBody, ResourceContents, ToolOutput,
};

/// What JSON framing costs per item (braces, keys, quotes, commas), a
/// floor so that a million empty blocks are not free.
const ITEM_OVERHEAD: usize = 16;

/// Base64's length for `n` bytes.
fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// The encoded size of a tool's result.
pub fn output_size(output: &ToolOutput) -> usize {
    let content: usize = output.content.iter().map(block_size).sum();
    content + output.structured.as_ref().map_or(0, String::len)
}

/// The encoded size of one content block.
pub fn block_size(block: &ContentBlock) -> usize {
    ITEM_OVERHEAD
        + match block {
            ContentBlock::Text(text) => text.len(),
            ContentBlock::Image(media) | ContentBlock::Audio(media) => {
                base64_len(media.data.len()) + media.mime_type.len()
            }
            ContentBlock::Resource(contents) => contents_size(contents),
            ContentBlock::ResourceLink(link) => {
                link.uri.len()
                    + link.name.len()
                    + link.description.as_ref().map_or(0, String::len)
                    + link.mime_type.as_ref().map_or(0, String::len)
            }
        }
}

/// The encoded size of a resource's contents.
pub fn contents_size(contents: &ResourceContents) -> usize {
    ITEM_OVERHEAD
        + contents.uri.len()
        + contents.mime_type.as_ref().map_or(0, String::len)
        + match &contents.body {
            ResourceBody::Text(text) => text.len(),
            ResourceBody::Blob(bytes) => base64_len(bytes.len()),
        }
}

/// The encoded size of a filled-in prompt.
pub fn prompt_size(prompt: &PromptResult) -> usize {
    prompt.description.as_ref().map_or(0, String::len)
        + prompt
            .messages
            .iter()
            .map(|m| ITEM_OVERHEAD + block_size(&m.content))
            .sum::<usize>()
}

/// The encoded size of a completion.
pub fn completion_size(completion: &Completion) -> usize {
    completion
        .values
        .iter()
        .map(|v| ITEM_OVERHEAD + v.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::Media;

    #[test]
    fn empty_blocks_cost_and_binary_counts_as_base64() {
        let empty = ToolOutput {
            content: vec![ContentBlock::Text(String::new()); 1000],
            structured: None,
        };
        assert_eq!(output_size(&empty), 1000 * ITEM_OVERHEAD);
        let image = ContentBlock::Image(Media {
            data: vec![0; 300],
            mime_type: "image/png".into(),
        });
        assert_eq!(block_size(&image), ITEM_OVERHEAD + 400 + 9);
        let blob = ResourceContents {
            uri: "a://b".into(),
            mime_type: None,
            body: ResourceBody::Blob(vec![0; 3]),
        };
        assert_eq!(contents_size(&blob), ITEM_OVERHEAD + 5 + 4);
    }
}
