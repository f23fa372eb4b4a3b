"""Technology assets (技术成果): what is owned, by whom, in what legal state, under what burdens."""
